import DevicePlugin
import Foundation
import NodeSupport
import Testing
import VaccelAgentAPI
import VaccelAgents
import VaccelRPC

/// The real `vaccel-device-plugin` binary as a child process, killed with SIGKILL and started
/// again: held slots keep live agents at the same endpoints, nothing is duplicated, and a
/// corrupt checkpoint is rebuilt from what runs and what pod-resources says.
@Suite("Daemon SIGKILL and restart")
struct RestartRecoveryTests {
  let directory: TestDirectory
  let kubelet: FakeKubelet
  let podResources: FakePodResourcesServer
  let configPath: String

  init() throws {
    directory = try TestDirectory()
    kubelet = FakeKubelet(directory: directory.sub("dp"))
    podResources = FakePodResourcesServer(socketPath: directory.sub("pr.sock"))
    configPath = directory.sub("config.yaml")
    try """
      version: v1
      logLevel: debug
      kubelet:
        devicePluginDir: \(directory.sub("dp"))
        podResourcesSocket: \(directory.sub("pr.sock"))
        podResourcesInterval: 1s
        allocationGrace: 10s
      runDir: \(directory.sub("run"))
      stateDir: \(directory.sub("state"))
      metrics: {address: "127.0.0.1:0"}
      agent:
        binary: \(Fixtures.standinAgent)
        stopGracePeriod: 2s
        restartBackoff: {initial: 50ms, max: 500ms}
      resources:
        - name: vaccel.org/accel
          slots: 4
      """.write(toFile: configPath, atomically: true, encoding: .utf8)
  }

  var checkpointPath: String { directory.sub("state/checkpoint.json") }
  func startDaemon() throws -> ChildProcess {
    try ChildProcess(Fixtures.daemon, ["--config", configPath])
  }

  func checkpoint(where predicate: @escaping @Sendable ([Checkpoint.Slot]) -> Bool) async throws -> [Checkpoint.Slot] {
    try await waitForCheckpoint(stateDir: directory.sub("state"), where: predicate)
  }

  func session(on path: String) async throws -> Int64 {
    try await TTRPCClient.withConnection(to: .unix(path: path), timeout: .seconds(5)) { connection in
      try await connection.call(
        service: VaccelAgentService.sync, method: "CreateSession", request: Vaccel_Session_CreateRequest(),
        as: Vaccel_Session_CreateResponse.self
      ).sessionID
    }
  }

  /// SIGKILL: no graceful shutdown, nothing cleaned up.
  func kill9(_ daemon: ChildProcess) async {
    kill(daemon.process.processIdentifier, SIGKILL)
    _ = await daemon.wait()
  }

  @Test func heldSlotsKeepTheirAgentsThroughSIGKILLAndNothingIsDuplicated() async throws {
    try await kubelet.start()
    try await podResources.start()
    defer { Task { await kubelet.stop(); await podResources.stop() } }

    var daemon = try startDaemon()
    _ = try await kubelet.wait(for: "registration") { $0.healthy("vaccel.org/accel") == 4 }
    // Each pod's agent socket, where its mounted folder has it.
    let socket = [
      try await kubelet.admit("vaccel.org/accel", [["accel-0"]]).hostSocket,
      try await kubelet.admit("vaccel.org/accel", [["accel-1"]]).hostSocket,
    ]
    podResources.set("vaccel.org/accel", holders: [
      "accel-0": Holder(namespace: "default", pod: "a", container: "main"),
      "accel-1": Holder(namespace: "default", pod: "b", container: "main"),
    ])
    let before = try await checkpoint { slots in
      slots.prefix(2).allSatisfy { $0.allocated && $0.pid != nil && $0.holder != nil }
    }
    let pids = before.prefix(2).map { $0.pid! }

    await kill9(daemon)
    #expect(pids.allSatisfy { ProcessInfoReader.state(of: $0) != nil }, "agents outlive the daemon")

    daemon = try startDaemon()
    _ = try await kubelet.wait(for: "registration after restart") { $0.registrations >= 2 && $0.healthy("vaccel.org/accel") == 4 }
    for slot in 0..<2 {
      _ = try await session(on: socket[slot])
      let agents = ProcessInfoReader.processes(withArgument: "unix://" + socket[slot])
      #expect(agents == [pids[slot]], "slot \(slot): adopted, not duplicated: \(agents)")
    }

    // Pod b went away while nobody watched: its slot is freed and recycled.
    podResources.set("vaccel.org/accel", holders: ["accel-0": Holder(namespace: "default", pod: "a", container: "main")])
    _ = try await checkpoint { slots in !slots[1].allocated && slots[1].pid == nil }
    #expect(ProcessInfoReader.processes(withArgument: "unix://" + socket[1]).isEmpty)

    // A torn checkpoint: set aside, state rebuilt from the running agent and pod-resources.
    await kill9(daemon)
    // Recovery knew the install before it took the held slots on: no false alarm.
    #expect(!daemon.standardError.contains("cannot run agents"), "\(daemon.standardError)")
    try Data("{\"version\": 1, \"resources\": {\"vaccel.or".utf8).write(to: URL(fileURLWithPath: checkpointPath))
    daemon = try startDaemon()
    let rebuilt = try await checkpoint { slots in slots[0].allocated && slots[0].pid != nil }
    #expect(rebuilt[0].pid == pids[0])
    #expect(FileManager.default.fileExists(atPath: checkpointPath + ".corrupt"))
    _ = try await session(on: socket[0])
    #expect(ProcessInfoReader.processes(withArgument: "unix://" + socket[0]) == [pids[0]])

    // SIGTERM: a clean exit that stops the agents and removes their sockets; the held slot's
    // folder stays for the next daemon (the pod has it mounted), the freed one's is gone.
    kill(daemon.process.processIdentifier, SIGTERM)
    #expect(await daemon.wait() == 0)
    #expect(ProcessInfoReader.state(of: pids[0]) == nil || ProcessInfoReader.state(of: pids[0]) == "Z")
    #expect(!FileManager.default.fileExists(atPath: socket[0]))
    #expect(FileManager.default.fileExists(atPath: (socket[0] as NSString).deletingLastPathComponent))
    #expect(!FileManager.default.fileExists(atPath: (socket[1] as NSString).deletingLastPathComponent))
  }

  /// The checkpoint is written a moment after a change (coalesced), so a SIGKILL can leave it
  /// naming the previous holder's allocation: the holder's folder on disk wins, and its agent
  /// is adopted there. (The chaos soak found this: a held slot served nothing after a kill.)
  @Test func aStaleCheckpointDoesNotMoveAHolderAwayFromItsFolder() async throws {
    try await kubelet.start()
    try await podResources.start()
    defer { Task { await kubelet.stop(); await podResources.stop() } }

    var daemon = try startDaemon()
    _ = try await kubelet.wait(for: "registration") { $0.healthy("vaccel.org/accel") == 4 }
    let socket = try await kubelet.admit("vaccel.org/accel", [["accel-0"]]).hostSocket
    podResources.set("vaccel.org/accel", holders: ["accel-0": Holder(namespace: "default", pod: "a", container: "main")])
    let before = try await checkpoint { $0[0].allocated && $0[0].pid != nil && $0[0].holder != nil }
    await kill9(daemon)

    // What a checkpoint written before the last hand-out says: another allocation of the slot.
    let stale = before[0].endpoint.replacingOccurrences(
      of: (socket as NSString).deletingLastPathComponent.split(separator: "/").last.map(String.init) ?? "", with: "0123456789abcdef")
    #expect(stale != before[0].endpoint)
    let text = try String(contentsOfFile: checkpointPath, encoding: .utf8)
      .replacingOccurrences(of: before[0].endpoint.replacingOccurrences(of: "/", with: "\\/"), with: stale.replacingOccurrences(of: "/", with: "\\/"))
      .replacingOccurrences(of: before[0].endpoint, with: stale)
    try text.write(toFile: checkpointPath, atomically: true, encoding: .utf8)
    #expect(try String(contentsOfFile: checkpointPath, encoding: .utf8).contains("0123456789abcdef"))

    daemon = try startDaemon()
    let after = try await checkpoint { $0[0].allocated && $0[0].endpoint == "unix://" + socket }
    #expect(after[0].pid == before[0].pid, "the agent in the holder's folder is adopted")
    _ = try await session(on: socket)
    kill(daemon.process.processIdentifier, SIGTERM)
    #expect(await daemon.wait() == 0)
  }

  /// A pod admitted by a daemon before per-allocation folders has the slot folder itself
  /// mounted, its agent listening at `<slot>/vaccel.sock`: after the upgrade that agent is
  /// adopted where it is, not moved to a folder the pod cannot see.
  @Test func anAgentOfTheOldOneFolderPerSlotLayoutIsAdoptedWhereItIs() async throws {
    try await podResources.start()
    defer { Task { await podResources.stop() } }
    let folder = directory.sub("run/accel/accel-0")
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    let socket = folder + "/vaccel.sock"
    let old = try ChildProcess(Fixtures.standinAgent, ["-a", "unix://" + socket], mergeStandardError: true)
    for await line in old.lines where line.hasPrefix("Listening on") { break }
    let holder = Holder(namespace: "default", pod: "old", container: "main")
    // The checkpoint that daemon wrote (the same format, an endpoint without an allocation).
    try FileManager.default.createDirectory(atPath: directory.sub("state"), withIntermediateDirectories: true)
    try """
      {"resources": {"vaccel.org/accel": [{"id": "accel-0", "allocated": true, "generation": 1,
        "holder": {"namespace": "default", "pod": "old", "container": "main"},
        "pid": \(old.process.processIdentifier), "endpoint": "unix://\(socket)"}]}, "version": 1}
      """.write(toFile: checkpointPath, atomically: true, encoding: .utf8)
    podResources.set("vaccel.org/accel", holders: ["accel-0": holder])

    let daemon = try startDaemon()
    let recovered = try await checkpoint { $0[0].allocated && $0[0].pid == old.process.processIdentifier }
    #expect(recovered[0].endpoint == "unix://" + socket)
    _ = try await session(on: socket)
    kill(daemon.process.processIdentifier, SIGTERM)
    #expect(await daemon.wait() == 0)
    #expect(await old.wait() == 0, "the adopted agent was stopped with the daemon")
  }
}
