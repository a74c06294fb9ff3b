import DevicePlugin
import Foundation
import NodeSupport
import Testing
import VaccelAgents

/// The real daemon binary: one owner per state folder, and SIGTERM at any moment after the
/// process starts (start-up, recovery, adoption included) is a clean stop that leaves no agent
/// and no agent socket behind.
@Suite("One owner per node; SIGTERM at any moment")
struct OwnershipAndSignalTests {
  let directory: TestDirectory
  let configPath: String

  init() throws {
    directory = try TestDirectory()
    configPath = directory.sub("config.yaml")
    try """
      version: v1
      kubelet:
        devicePluginDir: \(directory.sub("dp"))
        podResourcesSocket: \(directory.sub("pr.sock"))
        podResourcesInterval: 1s
      runDir: \(directory.sub("run"))
      stateDir: \(directory.sub("state"))
      metrics: {address: ""}
      agent:
        binary: \(Fixtures.standinAgent)
        stopGracePeriod: 2s
      resources:
        - name: vaccel.org/accel
          slots: 4
          warm: 2
      """.write(toFile: configPath, atomically: true, encoding: .utf8)
  }

  func startDaemon() throws -> ChildProcess {
    try ChildProcess(Fixtures.daemon, ["--config", configPath])
  }

  /// Waits until the process has a SIGTERM handler (its trap is in place): /proc offers no event.
  func trapped(_ daemon: ChildProcess) async throws {
    let pid = daemon.process.processIdentifier
    let deadline = ContinuousClock.now + .seconds(20)
    while ContinuousClock.now < deadline {
      if let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("SigCgt:") }),
        let mask = UInt64(line.dropFirst("SigCgt:".count).trimmingCharacters(in: .whitespaces), radix: 16),
        mask & (1 << (UInt64(SIGTERM) - 1)) != 0
      {
        return
      }
      try await Task.sleep(for: .milliseconds(1))
    }
    throw TimedOut(what: "the daemon's SIGTERM handler")
  }

  /// Agents still running for this test's runDir, and agent sockets left in it.
  func leftovers() -> (agents: [Int32], sockets: [String]) {
    let prefix = "unix://" + directory.sub("run") + "/"
    let agents = ProcessInfoReader.processes(withArgumentWhere: { $0.hasPrefix(prefix) }).map(\.pid)
    let sockets = (FileManager.default.enumerator(atPath: directory.sub("run"))?.allObjects as? [String] ?? [])
      .filter { $0.hasSuffix("/vaccel.sock") }
    return (agents, sockets)
  }

  @Test(arguments: [0, 2, 10, 30, 100, 300])
  func sigtermAtAnyMomentOfStartUpStopsCleanly(afterMilliseconds delay: Int) async throws {
    let daemon = try startDaemon()
    try await trapped(daemon)
    try await Task.sleep(for: .milliseconds(delay))  // the moment of the fault, not a wait for an event
    kill(daemon.process.processIdentifier, SIGTERM)
    let status = await daemon.wait()
    #expect(status == 0, "\(daemon.standardError)")
    #expect(daemon.process.terminationReason == .exit)
    let left = leftovers()
    #expect(left.agents.isEmpty && left.sockets.isEmpty, "left behind: \(left)")
  }

  /// A parent may start the daemon with SIGTERM, SIGINT and SIGHUP blocked (a Swift parent
  /// spawning from a dispatch thread passes libdispatch's mask on): SIGTERM still stops it.
  @Test func sigtermStopsItWhateverMaskTheParentPassedOn() async throws {
    let python = try #require(Repository.which("python3"), "python3 is needed: run scripts/install-test-deps")
    let blocking = """
      import os, signal, sys
      signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
      os.execv(sys.argv[1], sys.argv[1:])
      """
    let daemon = try ChildProcess(python, ["-c", blocking, Fixtures.daemon, "--config", configPath])
    try await trapped(daemon)  // python catches no SIGTERM: this is the daemon, after the exec
    let pid = daemon.process.processIdentifier
    kill(pid, SIGTERM)
    let status = try await withThrowingTaskGroup(of: Int32?.self) { group in
      group.addTask { try await daemon.exited() }
      group.addTask {
        try await Task.sleep(for: .seconds(60))  // a bound for a stop that never comes, not a wait for an event
        return nil
      }
      defer { group.cancelAll() }
      return try await group.next()!
    }
    if status == nil { kill(pid, SIGKILL) }
    #expect(status == 0, "SIGTERM left pending: \(daemon.standardError)")
    _ = await daemon.wait()
    let left = leftovers()
    #expect(left.agents.isEmpty && left.sockets.isEmpty, "left behind: \(left)")
  }

  /// The previous daemon was SIGKILLed with two pods' agents running; the new one is stopped
  /// while it adopts them: it stops what it adopted and started, and exits 0.
  @Test(arguments: [0, 1, 3, 10, 30])
  func sigtermDuringRecoveryStopsWhatWasAdopted(afterMilliseconds delay: Int) async throws {
    let kubelet = FakeKubelet(directory: directory.sub("dp"))
    let podResources = FakePodResourcesServer(socketPath: directory.sub("pr.sock"))
    try await kubelet.start()
    try await podResources.start()
    defer { Task { await kubelet.stop(); await podResources.stop() } }

    let first = try startDaemon()
    _ = try await kubelet.wait(for: "registration") { $0.healthy("vaccel.org/accel") == 4 }
    _ = try await kubelet.admit("vaccel.org/accel", [["accel-0"]])
    _ = try await kubelet.admit("vaccel.org/accel", [["accel-1"]])
    podResources.set("vaccel.org/accel", holders: [
      "accel-0": Holder(namespace: "default", pod: "a", container: "main"),
      "accel-1": Holder(namespace: "default", pod: "b", container: "main"),
    ])
    kill(first.process.processIdentifier, SIGKILL)
    _ = await first.wait()
    #expect(leftovers().agents.count >= 2, "the pods' agents outlive a SIGKILLed daemon")

    let second = try startDaemon()
    try await trapped(second)
    try await Task.sleep(for: .milliseconds(delay))  // the moment of the fault
    kill(second.process.processIdentifier, SIGTERM)
    #expect(await second.wait() == 0, "\(second.standardError)")
    let left = leftovers()
    #expect(left.agents.isEmpty && left.sockets.isEmpty, "left behind: \(left)")
  }

  @Test func aSecondInstanceExits1NamingTheOwnerAndTheFirstCarriesOn() async throws {
    let kubelet = FakeKubelet(directory: directory.sub("dp"))
    try await kubelet.start()
    defer { Task { await kubelet.stop() } }
    let first = try startDaemon()
    _ = try await kubelet.wait(for: "registration") { $0.healthy("vaccel.org/accel") == 4 }
    let socket = try await kubelet.admit("vaccel.org/accel", [["accel-0"]]).hostSocket
    let agents = Set(leftovers().agents)
    // The held slot's record (the first daemon rewrites its checkpoint as its warm agents come
    // and go, so the file as a whole may change; this record must not).
    let store = CheckpointStore(stateDir: directory.sub("state"))
    let held = try await waitForCheckpoint(stateDir: directory.sub("state")) { $0[0].allocated && $0[0].pid != nil }[0]

    let second = try await ChildProcess.run(Fixtures.daemon, ["--config", configPath])
    #expect(second.status == 1)
    #expect(second.error.contains(
      "another vaccel-device-plugin (pid \(first.process.processIdentifier)) owns \(directory.sub("state"))"), "\(second.error)")
    #expect(!second.error.contains("agent"), "the second instance touched agents: \(second.error)")

    // Every agent that ran before still runs (warm ones may have started since).
    #expect(agents.isSubset(of: Set(leftovers().agents)), "the first's agents are untouched")
    #expect(ProcessInfoReader.state(of: try #require(held.pid)) != nil, "the held slot's agent still runs")
    #expect(FileManager.default.fileExists(atPath: socket))
    #expect(try store.load()?.resources["vaccel.org/accel"]?.first == held)
    #expect(await kubelet.state.healthy("vaccel.org/accel") == 4)
    _ = try await kubelet.admit("vaccel.org/accel", [["accel-1"]])

    kill(first.process.processIdentifier, SIGTERM)
    #expect(await first.wait() == 0)
  }
}
