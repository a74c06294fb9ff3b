import DaemonLogging
import DevicePlugin
import Foundation
import GRPCCore
import KubeletAPI
import Synchronization
import Logging
import Testing
import VaccelAgentAPI
import VaccelAgents
import VaccelConfig
import VaccelRPC

/// Real stand-in agent processes behind the daemon, over real sockets.
@Suite("Per-pod agents: start, crash, recycle, recover")
struct AgentLifecycleTests {
  static let timeout: Duration = .seconds(20)

  func start(_ configure: (inout DaemonConfig) -> Void = { _ in }, podResources: FakePodResources = FakePodResources())
    async throws -> DaemonHarness
  {
    let harness = try await DaemonHarness.start(configure: configure, podResources: podResources)
    try await harness.registered()
    return harness
  }

  func pid(_ harness: DaemonHarness, _ slot: String) async throws -> Int32 {
    let state = try await harness.manager.waitForSlot(slot, timeout: Self.timeout) { $0.agent.phase == .ready }
    return try #require(state.agent.pid)
  }

  /// Allocate hands out where the agent will be and returns without waiting for a cold one;
  /// PreStartContainer returns once that agent is ready in that place.
  @Test func allocateAnswersAtOnceAndPreStartWaitsForTheHoldersOwnAgent() async throws {
    try await DaemonHarness.using(try await start { $0.resources[0].warm = 0 }) { harness in
      let reply = try await harness.kubelet.allocate(harness.resource, [["accel-2"]])
      let socket = try reply.hostSocket
      let client = try await harness.kubelet.client(harness.resource)
      _ = try await client.preStartContainer(.with { $0.devicesIds = ["accel-2"] })
      let state = await harness.manager.slotStates[2]
      #expect(state.agent.phase == .ready && state.agent.endpoint == "unix://" + socket, "\(state)")
      _ = try await TTRPCClient.withConnection(to: .unix(path: socket), timeout: .seconds(5)) {
        try await $0.call(
          service: VaccelAgentService.sync, method: "CreateSession", request: Vaccel_Session_CreateRequest(),
          as: Vaccel_Session_CreateResponse.self)
      }
    }
  }

  @Test func allocateStartsAFreshAgentThatServesSessions() async throws {
    try await DaemonHarness.using(try await start()) { harness in
      let reply = try await harness.kubelet.admit(harness.resource, [["accel-0"]])
      let container = try #require(reply.containerResponses.first)

      // The client's path: the address it was given, inside the folder mounted for it.
      let address = try #require(container.envs["VACCEL_RPC_ADDRESS"])
      let mount = try #require(container.mounts.first)
      let inContainer = String(address.dropFirst("unix://".count))
      #expect(inContainer.hasPrefix(mount.containerPath + "/"))
      let onHost = mount.hostPath + inContainer.dropFirst(mount.containerPath.count)
      let tags = try await TTRPCClient.withConnection(to: .unix(path: onHost), timeout: .seconds(5)) { connection in
        let session = try await connection.call(
          service: VaccelAgentService.sync, method: "CreateSession", request: Vaccel_Session_CreateRequest(),
          as: Vaccel_Session_CreateResponse.self)
        let result = try await connection.call(
          service: VaccelAgentService.sync, method: "ImageClassification",
          request: Vaccel_Image_Request.with { $0.sessionID = session.sessionID; $0.image = Data([1, 2, 3]) },
          as: Vaccel_Image_Response.self)
        _ = try await connection.call(
          service: VaccelAgentService.sync, method: "DestroySession",
          request: Vaccel_Session_DestroyRequest.with { $0.sessionID = session.sessionID }, as: Vaccel_Empty_Empty.self)
        return String(decoding: result.tags, as: UTF8.self)
      }
      #expect(tags == "This is a dummy classification tag!")
      let state = await harness.manager.slotStates[0]
      #expect(state.agent.handedOut && state.agent.generation == 1 && state.allocated)
    }
  }

  @Test func aCrashedAgentIsRestartedAndItsDeviceRecovers() async throws {
    try await DaemonHarness.using(try await start()) { harness in
      _ = try await harness.kubelet.admit(harness.resource, [["accel-1"]])
      let first = try await pid(harness, "accel-1")

      kill(first, SIGKILL)
      _ = try await harness.kubelet.wait(for: "accel-1 unhealthy") { $0.healthy("vaccel.org/accel") == 7 }
      _ = try await harness.kubelet.wait(for: "accel-1 healthy again") { $0.healthy("vaccel.org/accel") == 8 }
      let state = try await harness.manager.waitForSlot("accel-1", timeout: Self.timeout) { $0.agent.phase == .ready }
      #expect(state.agent.pid != first)
      #expect(state.agent.restarts == 1)
      #expect(state.agent.lastError?.contains("SIGKILL") == true)
      #expect(state.agent.lastError?.contains("files changed") == false, "nothing changed under this one")
      #expect(ProcessInfoReader.state(of: first) == nil, "the killed agent was reaped, not left a zombie")
    }
  }

  /// The kubelet reuses a device the moment its pod is gone, while the daemon is still
  /// recycling it for that pod's removal: the new holder must get a fresh agent, not an error.
  @Test func anAllocationDuringTheRecycleOfTheSameSlotGetsAFreshAgent() async throws {
    let podResources = FakePodResources()
    try await DaemonHarness.using(try await start({
      $0.resources[0].agent.stopGracePeriod = .seconds(2)
    }, podResources: podResources)) { harness in
      for round in 0..<10 {
        _ = try await harness.kubelet.admit(harness.resource, [["accel-0"]])
        let first = try await pid(harness, "accel-0")
        podResources.set(harness.resource, [:])  // the pod is gone...
        async let freed: Void = harness.daemon.podResources.pollOnce()
        async let next = harness.kubelet.admit(harness.resource, [["accel-0"]])  // ...and its device reused
        _ = try await (freed, next)
        let second = try await pid(harness, "accel-0")
        #expect(second != first, "round \(round): the new holder got the old agent")
        podResources.set(harness.resource, ["accel-0": Holder(namespace: "default", pod: "p\(round)", container: "c")])
        try await harness.daemon.podResources.pollOnce()
        podResources.set(harness.resource, [:])
        try await harness.daemon.podResources.pollOnce()
        _ = try await harness.manager.waitForSlot("accel-0", timeout: Self.timeout) { !$0.allocated && $0.agent.phase == .stopped }
      }
    }
  }

  @Test func aHungAgentIsFoundByItsLivenessProbeAndReplaced() async throws {
    try await DaemonHarness.using(try await start {
      // A short interval so the test is quick, but a probe timeout with room for a loaded
      // CI machine: 200 ms once let the healthy replacement miss twice and be killed too.
      $0.resources[0].agent.livenessInterval = .milliseconds(100)
      $0.resources[0].agent.livenessFailures = 2
      $0.resources[0].agent.probeTimeout = .seconds(1)
    }) { harness in
      _ = try await harness.kubelet.admit(harness.resource, [["accel-3"]])
      let first = try await pid(harness, "accel-3")
      kill(first, SIGSTOP)  // alive, its socket still accepting, never answering
      let state = try await harness.manager.waitForSlot("accel-3", timeout: Self.timeout) {
        $0.agent.phase == .ready && $0.agent.pid != first
      }
      #expect(state.agent.restarts == 1)
      #expect(state.agent.lastError?.contains("stopped answering") == true, "\(state.agent.lastError ?? "")")
      #expect(ProcessInfoReader.state(of: first) == nil, "the hung agent was killed and reaped")
      #expect(String(decoding: harness.daemon.metrics.exposition(), as: UTF8.self).contains(#"reason="unresponsive""#))
    }
  }

  @Test func livenessProbingCanBeTurnedOff() async throws {
    try await DaemonHarness.using(try await start {
      $0.resources[0].agent.livenessInterval = .zero
      $0.resources[0].agent.probeTimeout = .seconds(1)
    }) { harness in
      _ = try await harness.kubelet.admit(harness.resource, [["accel-4"]])
      let first = try await pid(harness, "accel-4")
      kill(first, SIGSTOP)
      defer { kill(first, SIGCONT) }
      // Nothing to wait for but time: with probing off the daemon has no event to act on.
      // A crash (SIGKILL on another slot) shows the daemon is otherwise awake.
      _ = try await harness.kubelet.admit(harness.resource, [["accel-5"]])
      let other = try await pid(harness, "accel-5")
      kill(other, SIGKILL)
      _ = try await harness.manager.waitForSlot("accel-5", timeout: Self.timeout) { $0.agent.phase == .ready && $0.agent.pid != other }
      #expect(await harness.manager.slotStates[4].agent.pid == first, "a hung agent is left alone when liveness is off")
    }
  }

  @Test func aCrashLoopIsUnhealthyWithGrowingBackoff() async throws {
    try await DaemonHarness.using(try await start {
      // Up for a second after binding: long enough for a loaded machine's readiness probe
      // (at 150 ms every start could die unprobed and the first Allocate never succeed).
      $0.resources[0].agent.env["STANDIN_EXIT_AFTER_MS"] = "1000"
      $0.resources[0].agent.restartBackoffInitial = .milliseconds(100)
      $0.resources[0].agent.restartBackoffMax = .seconds(5)
    }) { harness in
      _ = try await harness.kubelet.admit(harness.resource, [["accel-2"]])
      let state = try await harness.manager.waitForSlot("accel-2", timeout: Self.timeout) { $0.agent.crashLooping }
      #expect(!state.healthy)
      #expect(state.unhealthyReason?.contains("crash-looping") == true, "\(state.unhealthyReason ?? "")")
      #expect(state.agent.lastError?.contains("exited with code 1") == true, "\(state.agent.lastError ?? "")")
      _ = try await harness.kubelet.wait(for: "accel-2 unhealthy at the kubelet") {
        $0.plugins["vaccel.org/accel"]?.devices.first { $0.id == "accel-2" }?.health == "Unhealthy"
      }
    }
  }

  @Test func aCrashLoopEndsWhenTheAgentStaysUp() async throws {
    try await DaemonHarness.using(try await start {
      $0.resources[0].agent.restartBackoffInitial = .milliseconds(20)
      // Longer than a loaded machine takes between an agent's start and the test's next kill,
      // or the loop is declared over before the third crash (5 s was once too short).
      $0.resources[0].agent.restartBackoffReset = .seconds(12)
    }) { harness in
      _ = try await harness.kubelet.admit(harness.resource, [["accel-7"]])
      for round in 1...3 {
        let pid = try await pid(harness, "accel-7")
        kill(pid, SIGKILL)
        if round < 3 {
          _ = try await harness.manager.waitForSlot("accel-7", timeout: Self.timeout) { $0.agent.pid != pid && $0.agent.phase == .ready }
        }
      }
      // The third exit in a row: a crash loop, unhealthy even while the agent is briefly up.
      let looping = try await harness.manager.waitForSlot("accel-7", timeout: Self.timeout) { $0.agent.crashLooping }
      #expect(!looping.healthy)
      // Left alone, it stays up: the crash loop is over and the device healthy again.
      let stable = try await harness.manager.waitForSlot("accel-7", timeout: .seconds(40)) { $0.healthy && $0.agent.phase == .ready }
      #expect(!stable.agent.crashLooping && stable.agent.restarts == 3)
      // Stable for the reset period: the old error is history, no longer the slot's LAST-ERROR.
      #expect(stable.agent.lastError == nil, "\(stable.agent.lastError ?? "")")
    }
  }

  @Test func aFreedSlotIsRecycledAndTheNextHolderGetsANewProcess() async throws {
    let podResources = FakePodResources()
    try await DaemonHarness.using(try await start(podResources: podResources)) { harness in
      let reply = try await harness.kubelet.admit(harness.resource, [["accel-3"]])
      let first = try await pid(harness, "accel-3")
      let socket = try reply.hostSocket
      #expect(FileManager.default.fileExists(atPath: socket))

      let holder = Holder(namespace: "default", pod: "a", container: "main")
      podResources.set(harness.resource, ["accel-3": holder])
      try await harness.daemon.podResources.pollOnce()
      #expect(await harness.manager.slotStates[3].holder == holder)

      podResources.set(harness.resource, [:])  // the pod is gone
      try await harness.daemon.podResources.pollOnce()
      let freed = try await harness.manager.waitForSlot("accel-3", timeout: Self.timeout) {
        !$0.allocated && $0.agent.phase == .stopped
      }
      #expect(freed.agent.pid == nil)
      #expect(ProcessInfoReader.state(of: first) == nil)
      #expect(!FileManager.default.fileExists(atPath: try reply.hostFolder), "the allocation's folder is gone")

      _ = try await harness.kubelet.admit(harness.resource, [["accel-3"]])
      let second = try await pid(harness, "accel-3")
      #expect(second != first)
    }
  }

  /// Eight agents starting together, with libvaccel's racy run folder (the stand-in's
  /// check-then-mkdir, its window widened to 1 s). Without the daemon making the folder first,
  /// agents lose the race and exit 20 (the control), and are started again at once: every
  /// slot ends ready and healthy with no error. With it, no agent exits 20 at all.
  @Test(arguments: [true, false])
  func agentsStartingTogetherDoNotLoseLibvaccelsRunFolderRace(daemonMakesTheFolder: Bool) async throws {
    let directory = try TestDirectory()
    let runFolder = directory.sub("run-user/vaccel")
    try FileManager.default.createDirectory(atPath: directory.sub("run-user"), withIntermediateDirectories: true)
    let harness = try await DaemonHarness.start(
      directory: directory,
      configure: {
        $0.resources[0].warm = 8
        $0.resources[0].agent.env["STANDIN_VACCEL_RUNDIR"] = runFolder
        $0.resources[0].agent.env["STANDIN_RUNDIR_RACE_MS"] = "1000"
      },
      vaccelRunFolder: .some(daemonMakesTheFolder ? runFolder : nil))
    try await DaemonHarness.using(harness) { harness in
      try await harness.registered()
      for slot in 0..<8 {
        let state = try await harness.manager.waitForSlot("accel-\(slot)", timeout: Self.timeout) { $0.agent.phase == .ready }
        #expect(state.healthy && state.agent.lastError == nil && state.agent.restarts == 0, "\(state)")
      }
      let logs = (0..<8).map { (try? String(contentsOfFile: harness.config.stateDir + "/agents/accel/accel-\($0).log", encoding: .utf8)) ?? "" }
      let lost = logs.filter { $0.contains("Could not create root rundir") }.count
      if daemonMakesTheFolder {
        #expect(lost == 0, "agents lost the race although the daemon made the folder")
      } else {
        #expect(lost > 0, "the control: without the folder made first, agents race for it")
      }
    }
  }

  /// By default only an agent's warnings and errors reach the daemon's log, so its own history
  /// is not buried under per-call lines; a crashed agent's last lines come along anyway.
  @Test func agentInfoLinesStayInTheirFileUntilTheAgentCrashes() async throws {
    let (logger, lines) = capturedLogger()
    try await DaemonHarness.using(try await DaemonHarness.start(logger: logger)) { harness in
      try await harness.registered()
      let socket = try await harness.kubelet.admit(harness.resource, [["accel-1"]]).hostSocket
      _ = try await TTRPCClient.withConnection(to: .unix(path: socket), timeout: .seconds(5)) {
        try await $0.call(
          service: VaccelAgentService.sync, method: "CreateSession", request: Vaccel_Session_CreateRequest(),
          as: Vaccel_Session_CreateResponse.self)
      }
      kill(try await pid(harness, "accel-1"), SIGKILL)
      // Every agent line up to the first line of the crashed agent's tail.
      let seen = try await withThrowingTaskGroup(of: [String].self) { group in
        group.addTask {
          var agentLines: [String] = []
          for await line in lines where line.contains("source=agent") {
            agentLines.append(line)
            if line.contains("tail=true") { return agentLines }
          }
          return agentLines
        }
        group.addTask { try await Task.sleep(for: Self.timeout); throw TimedOut(what: "the crashed agent's tail") }
        defer { group.cancelAll() }
        return try await group.next()!
      }
      let tail = seen.last ?? ""
      #expect(tail.contains("tail=true") && tail.contains("level=warning"), "\(tail)")
      #expect(seen.dropLast().isEmpty, "info lines forwarded: \(seen.dropLast())")
      let file = try String(contentsOfFile: harness.config.stateDir + "/agents/accel/accel-1.log", encoding: .utf8)
      #expect(file.contains("[INFO] session:"), "the agent's own file keeps every line")
    }
  }

  /// A stop the daemon asked for (a pod gone, SIGTERM) is no crash: no tail in the daemon's log.
  @Test func aPlannedStopLogsNoTail() async throws {
    // Kept as they are written: the check below reads them after the daemon stopped.
    let written = Mutex<[String]>([])
    let logger = Logger(label: "daemon") { label in
      DaemonLogHandler(label: label, format: .keyvalue, control: LogLevelControl(.info)) { line in written.withLock { $0.append(line) } }
    }
    let harness = try await DaemonHarness.start(podResources: FakePodResources(), logger: logger)
    try await harness.registered()
    _ = try await harness.kubelet.admit(harness.resource, [["accel-1"]])
    _ = try await pid(harness, "accel-1")
    try await harness.daemon.podResources.pollOnce()  // nobody holds accel-1: recycled
    _ = try await harness.manager.waitForSlot("accel-1", timeout: Self.timeout) { !$0.allocated && $0.agent.pid == nil }
    try await harness.stop()  // SIGTERM's path: every agent stopped
    await harness.kubelet.stop()
    let lines = written.withLock { $0 }
    #expect(lines.contains { $0.contains("agent ready") }, "the capture works")
    #expect(!lines.contains { $0.contains("tail=true") }, "\(lines.filter { $0.contains("tail=true") })")
  }

  @Test func forwardLogsInfoForwardsEveryLine() async throws {
    let (logger, lines) = capturedLogger()
    try await DaemonHarness.using(try await DaemonHarness.start(configure: { $0.resources[0].agent.forwardLogs = .info }, logger: logger)) { harness in
      try await harness.registered()
      _ = try await harness.kubelet.admit(harness.resource, [["accel-1"]])
      let line = try await firstLine(in: lines, containing: "session:")
      #expect(line.contains("source=agent") && line.contains("level=info"), "\(line)")
    }
  }

  /// An install replaced in place under running agents crashes them (SIGSEGV in a cluster):
  /// the slot's error and the daemon's log say which files changed.
  @Test func anAgentThatDiesAfterItsLibrariesChangedSaysSo() async throws {
    let directory = try TestDirectory()
    let library = directory.sub("vaccel/lib/libvaccel.so")
    try FileManager.default.createDirectory(atPath: directory.sub("vaccel/lib"), withIntermediateDirectories: true)
    try Data("version 1".utf8).write(to: URL(fileURLWithPath: library))
    try await DaemonHarness.using(try await DaemonHarness.start(directory: directory, configure: {
      $0.resources[0].agent.libraryPath = directory.sub("vaccel/lib")
      // The Swift runtime's crash handler would catch the SIGSEGV; the real agent has none.
      $0.resources[0].agent.env["SWIFT_BACKTRACE"] = "enable=no"
    })) { harness in
      try await harness.registered()
      _ = try await harness.kubelet.admit(harness.resource, [["accel-2"]])
      let first = try await pid(harness, "accel-2")
      // `cp` of a new build over the running one: same file, new contents.
      let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: library))
      try handle.write(contentsOf: Data("version 2, longer".utf8))
      try handle.close()
      kill(first, SIGSEGV)
      let state = try await harness.manager.waitForSlot("accel-2", timeout: Self.timeout) {
        $0.agent.restarts == 1 && $0.agent.phase == .ready
      }
      #expect(state.agent.lastError?.contains("SIGSEGV") == true, "\(state.agent.lastError ?? "")")
      #expect(state.agent.lastError?.contains("its files changed while it ran (\(library))") == true, "\(state.agent.lastError ?? "")")
    }
  }

  /// The grace covers only an allocation pod-resources has not listed yet: a listed holder
  /// that disappears is freed at the next poll (in a cluster, slots stayed held 24-27 s).
  @Test func aListedHolderThatGoesIsFreedAtTheNextPollWhateverTheGrace() async throws {
    let podResources = FakePodResources()
    try await DaemonHarness.using(try await start({ $0.kubelet.allocationGrace = .seconds(3600) }, podResources: podResources)) { harness in
      _ = try await harness.kubelet.admit(harness.resource, [["accel-0"]])
      _ = try await harness.kubelet.admit(harness.resource, [["accel-1"]])
      podResources.set(harness.resource, ["accel-0": Holder(namespace: "default", pod: "a", container: "main")])
      try await harness.daemon.podResources.pollOnce()
      podResources.set(harness.resource, [:])  // pod a is deleted; accel-1's pod was never listed
      try await harness.daemon.podResources.pollOnce()
      let states = await harness.manager.slotStates
      #expect(!states[0].allocated, "a listed holder that went is freed at once")
      #expect(states[1].allocated, "an allocation not listed yet keeps its grace")
    }
  }

  /// Two pods go in one poll; the first one's agent is slow to stop (frozen: it takes the
  /// whole grace period). The kubelet gives the second slot to a new pod meanwhile: its fresh
  /// agent must not be stopped by the second slot's recycle arriving late (the chaos soak saw a
  /// held slot lose its agent so).
  @Test func aSlotHandedOutWhileAnotherIsStillBeingRecycledKeepsItsNewAgent() async throws {
    let podResources = FakePodResources()
    try await DaemonHarness.using(try await start({ $0.resources[0].agent.stopGracePeriod = .seconds(2) }, podResources: podResources)) { harness in
      _ = try await harness.kubelet.admit(harness.resource, [["accel-0"]])
      _ = try await harness.kubelet.admit(harness.resource, [["accel-1"]])
      podResources.set(harness.resource, [
        "accel-0": Holder(namespace: "default", pod: "a", container: "main"),
        "accel-1": Holder(namespace: "default", pod: "b", container: "main"),
      ])
      try await harness.daemon.podResources.pollOnce()
      let frozen = try await pid(harness, "accel-0")
      kill(frozen, SIGSTOP)  // its stop waits out the grace period, then SIGKILL
      defer { kill(frozen, SIGCONT) }

      podResources.set(harness.resource, [:])  // both pods are gone
      async let poll: Void = harness.daemon.podResources.pollOnce()
      _ = try await harness.manager.waitForSlot("accel-1", timeout: Self.timeout) { !$0.allocated }
      let reply = try await harness.kubelet.admit(harness.resource, [["accel-1"]])  // pod c
      let fresh = try await pid(harness, "accel-1")
      try await poll

      let state = await harness.manager.slotStates[1]
      #expect(state.allocated && state.agent.pid == fresh && state.agent.phase == .ready, "\(state)")
      _ = try await TTRPCClient.withConnection(to: .unix(path: try reply.hostSocket), timeout: .seconds(5)) {
        try await $0.call(
          service: VaccelAgentService.sync, method: "CreateSession", request: Vaccel_Session_CreateRequest(),
          as: Vaccel_Session_CreateResponse.self)
      }
    }
  }

  @Test func reallocatingAHeldSlotNeverReusesTheAgent() async throws {
    // The kubelet may give a slot to a new pod before our poll noticed the old one left.
    try await DaemonHarness.using(try await start()) { harness in
      _ = try await harness.kubelet.admit(harness.resource, [["accel-4"]])
      let first = try await pid(harness, "accel-4")
      _ = try await harness.kubelet.admit(harness.resource, [["accel-4"]])
      let second = try await pid(harness, "accel-4")
      #expect(second != first)
      #expect(ProcessInfoReader.state(of: first) == nil)
      #expect(await harness.manager.slotStates[4].agent.generation == 2)
    }
  }

  @Test func preStartBringsADeadAgentBackAtOnce() async throws {
    try await DaemonHarness.using(try await start {
      // A long back-off: PreStart must not wait it out.
      $0.resources[0].agent.restartBackoffInitial = .seconds(60)
      $0.resources[0].agent.restartBackoffMax = .seconds(60)
    }) { harness in
      let reply = try await harness.kubelet.admit(harness.resource, [["accel-5"]])
      let first = try await pid(harness, "accel-5")
      // A first crash restarts at once; the second in a row starts the (60 s) back-off.
      kill(first, SIGKILL)
      let second = try await harness.manager.waitForSlot("accel-5", timeout: Self.timeout) {
        $0.agent.restarts == 1 && $0.agent.phase == .ready && $0.agent.pid != first
      }.agent.pid!
      kill(second, SIGKILL)
      let waiting = try await harness.manager.waitForSlot("accel-5", timeout: Self.timeout) { $0.agent.restarts == 2 }
      #expect(waiting.agent.phase == .backoff && waiting.agent.pid == nil)

      let client = try await harness.kubelet.client(harness.resource)
      _ = try await client.preStartContainer(.with { $0.devicesIds = ["accel-5"] })
      let state = await harness.manager.slotStates[5]
      #expect(state.agent.phase == .ready && state.agent.pid != first && state.agent.pid != second)
      // The container restarts into the same allocation: its folder, its agent.
      #expect(state.agent.endpoint == "unix://" + (try reply.hostSocket))
    }
  }

  /// Allocate answers at once (it runs in the kubelet's admission loop); the container's
  /// PreStartContainer is what waits for the agent, and fails UNAVAILABLE with its last error,
  /// which fails that container start (the kubelet retries it), not the pod's admission.
  @Test func anAgentThatNeverGetsReadyFailsPreStartNotAllocate() async throws {
    try await DaemonHarness.using(try await start {
      $0.resources[0].agent.env["STANDIN_HANG"] = "startup"
      $0.resources[0].agent.readyTimeout = .milliseconds(500)
    }) { harness in
      let reply = try await harness.kubelet.allocate(harness.resource, [["accel-6"]])
      #expect(reply.containerResponses.count == 1)
      let error = await #expect(throws: RPCError.self) {
        _ = try await harness.kubelet.client(harness.resource).preStartContainer(.with { $0.devicesIds = ["accel-6"] })
      }
      #expect(error?.code == .unavailable)
      #expect(error?.message.contains("accel-6") == true && error?.message.contains("not ready within") == true, "\(error?.message ?? "")")
    }
  }

  @Test func aMissingBinaryIsUnhealthyWithItsReasonUntilTheNodeIsFixed() async throws {
    let directory = try TestDirectory()
    let binary = directory.sub("bin/vaccel-rpc-agent")
    try await DaemonHarness.using(try await DaemonHarness.start(directory: directory, configure: {
      $0.resources[0].agent.binary = binary
    })) { harness in
      let down = try await harness.kubelet.wait(for: "devices listed unhealthy") {
        $0.plugins["vaccel.org/accel"].map { !$0.devices.isEmpty && $0.devices.allSatisfy { $0.health == "Unhealthy" } } ?? false
      }
      #expect(down.healthy("vaccel.org/accel") == 0)
      let state = await harness.manager.slotStates[0]
      #expect(state.unhealthyReason?.contains(binary) == true, "\(state.unhealthyReason ?? "")")
      await #expect(throws: RPCError.self) { _ = try await harness.kubelet.admit(harness.resource, [["accel-0"]]) }

      // The operator installs the agent: the periodic node check notices, no restart needed.
      try FileManager.default.createDirectory(atPath: directory.sub("bin"), withIntermediateDirectories: true)
      try FileManager.default.copyItem(atPath: Fixtures.standinAgent, toPath: binary)
      try await harness.registered()
      _ = try await harness.kubelet.admit(harness.resource, [["accel-0"]])
    }
  }

  @Test func theWarmPoolKeepsFreshAgentsForFreeSlots() async throws {
    try await DaemonHarness.using(try await start { $0.resources[0].warm = 2 }) { harness in
      let warm = try await harness.manager.waitForSlot("accel-0", timeout: Self.timeout) { $0.agent.phase == .ready }
      _ = try await harness.manager.waitForSlot("accel-1", timeout: Self.timeout) { $0.agent.phase == .ready }

      // Preferred allocation picks a warm slot; Allocate hands out that very process.
      let client = try await harness.kubelet.client(harness.resource)
      let preferred = try await client.getPreferredAllocation(.with {
        $0.containerRequests = [.with { $0.availableDeviceIds = (0..<8).reversed().map { "accel-\($0)" }; $0.allocationSize = 1 }]
      })
      let chosen = try #require(preferred.containerResponses.first?.deviceIds.first)
      #expect(["accel-0", "accel-1"].contains(chosen))
      _ = try await harness.kubelet.admit(harness.resource, [[chosen]])
      if chosen == "accel-0" {
        #expect(await harness.manager.slotStates[0].agent.pid == warm.agent.pid)
      }
      // The pool refills: two free slots with a fresh agent again.
      _ = try await harness.manager.waitForSlot("accel-2", timeout: Self.timeout) { $0.agent.phase == .ready }
    }
  }

  @Test func runtimeManagedResourcesStartNoAgents() async throws {
    try await DaemonHarness.using(try await start { $0.resources[0].agents = .runtime }) { harness in
      let reply = try await harness.kubelet.admit(harness.resource, [["accel-0"]])
      #expect(reply.containerResponses.first?.envs.isEmpty == true)
      #expect(harness.daemon.managers[0].agents == nil)
    }
  }

  @Test func twoHundredCyclesLeaveNoZombieSocketFolderOrDescriptor() async throws {
    let podResources = FakePodResources()
    try await DaemonHarness.using(try await start({ $0.resources[0].slots = 2 }, podResources: podResources)) { harness in

      func cycle(_ n: Int) async throws {
        let slot = "accel-\(n % 2)"
        _ = try await harness.kubelet.admit(harness.resource, [[slot]])
        podResources.set(harness.resource, [:])
        try await harness.daemon.podResources.pollOnce()
        _ = try await harness.manager.waitForSlot(slot, timeout: Self.timeout) { !$0.allocated && $0.agent.phase == .stopped }
      }
      for n in 0..<10 { try await cycle(n) }  // warm up lazily created descriptors
      let descriptorsBefore = openDescriptors()
      for n in 10..<210 {
        try await cycle(n)
      }

      let children = childProcesses()
      #expect(children.filter { $0.state == "Z" }.isEmpty, "zombies: \(children)")
      // This daemon's agents only: other tests run their own daemons in this process.
      #expect(children.filter { $0.command.contains(harness.config.runDir) }.isEmpty, "agents left: \(children)")
      let leftovers = try FileManager.default.subpathsOfDirectory(atPath: harness.config.runDir)
      // The slot folders, and the status socket that lives as long as the daemon.
      #expect(leftovers.sorted() == ["accel", "accel/accel-0", "accel/accel-1", "device-plugin.sock"], "\(leftovers)")
      #expect(openDescriptors() <= descriptorsBefore + 4, "descriptors grew from \(descriptorsBefore) to \(openDescriptors())")
      #expect(harness.daemon.monitor.watchedCount == 0)
      let total = await harness.manager.slotStates.map(\.allocations).reduce(0, +)
      #expect(total == 210)
    }
  }
}

func openDescriptors() -> Int {
  (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1
}

/// Our child processes, from /proc (pid, state letter, command line).
func childProcesses() -> [(pid: Int32, state: Character, command: String)] {
  let me = getpid()
  let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
  return entries.compactMap(Int32.init).compactMap { pid in
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
      let close = stat.lastIndex(of: ")")
    else { return nil }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    guard fields.count > 2, Int32(fields[1]) == me, let state = fields[0].first else { return nil }
    let command = (FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") ?? Data())
      .split(separator: 0).map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ")
    return (pid, state, command)
  }
}
