import AgentHostAPI
import DevicePlugin
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Logging
import NodeSupport
import Synchronization
import Testing
import VaccelAgentAPI
import VaccelAgents
import VaccelRPC

/// Issue 13: the daemon is replaced (SIGTERM and a new process, then SIGKILL and a new one)
/// while three pods' clients call their agents in a loop. With the agent host owning the
/// agents, no call fails, the agents are the same processes and the sessions survive.
///
/// The daemon runs as a container would: the first process of a pid namespace of its own
/// (`unshare --pid`), so when it ends the kernel kills everything it started, as a container's
/// end does. The control without the agent host shows the loop sees a rollout.
@Suite("A rollout of the daemon costs running pods nothing", .serialized)
struct RolloutTests {
  let directory: TestDirectory
  var hostSocket: String { directory.sub("host/agent-host.sock") }
  var runDir: String { directory.sub("run") }

  init() throws {
    directory = try TestDirectory()
  }

  func writeConfig(agentHost: Bool) throws -> String {
    let path = directory.sub("config.yaml")
    try """
      version: v1
      kubelet:
        devicePluginDir: \(directory.sub("dp"))
        podResourcesSocket: \(directory.sub("pr.sock"))
        podResourcesInterval: 1s
        allocationGrace: 1s
      runDir: \(runDir)
      stateDir: \(directory.sub("state"))
      metrics: {address: ""}
      \(agentHost ? "agentHost: {socket: \(hostSocket)}" : "")
      agent:
        binary: \(Fixtures.standinAgent)
        stopGracePeriod: 2s
      resources:
        - name: vaccel.org/accel
          slots: 4
          warm: 1
      """.write(toFile: path, atomically: true, encoding: .utf8)
    return path
  }

  /// A process started as the first of a pid namespace of its own; `pid` is the one inside.
  struct Contained {
    let outer: ChildProcess
    let pid: Int32

    static func start(_ arguments: [String]) async throws -> Contained {
      guard getuid() == 0 else {
        // A pid namespace needs root; without it the daemon is a plain process (weaker: its
        // end does not take its children with it).
        let plain = try ChildProcess(arguments[0], Array(arguments.dropFirst()))
        return Contained(outer: plain, pid: plain.process.processIdentifier)
      }
      let outer = try ChildProcess("/usr/bin/unshare", ["--pid", "--fork", "--kill-child"] + arguments)
      let unsharePID = outer.process.processIdentifier
      let deadline = ContinuousClock.now + .seconds(20)
      while ContinuousClock.now < deadline {
        // /proc offers no event for a fork: read the children list until it names the child.
        if let text = try? String(contentsOfFile: "/proc/\(unsharePID)/task/\(unsharePID)/children", encoding: .utf8),
          let pid = text.split(separator: " ").first.flatMap({ Int32($0) })
        {
          return Contained(outer: outer, pid: pid)
        }
        try await Task.sleep(for: .milliseconds(1))
      }
      throw TimedOut(what: "the contained process")
    }

    func stop(_ signal: Int32) async -> Int32 {
      kill(pid, signal)
      return await outer.wait()
    }
  }

  /// The kubelet's registration and pod-resources sockets, emulated.
  func startKubelet() async throws -> (FakeKubelet, FakePodResourcesServer) {
    let kubelet = FakeKubelet(directory: directory.sub("dp"))
    let podResources = FakePodResourcesServer(socketPath: directory.sub("pr.sock"))
    try await kubelet.start()
    try await podResources.start()
    return (kubelet, podResources)
  }

  func startHost() throws -> ChildProcess {
    try ChildProcess(Fixtures.daemon, ["agent-host", "--socket", hostSocket, "--stop-grace", "2"])
  }

  /// The host's agents (pid → listen address), asked the way the daemon asks.
  func hostedAgents() async throws -> [Int32: String] {
    let launcher = try HostedLauncher(socket: hostSocket, patience: .seconds(20), logger: Logger(label: "test"))
    defer { launcher.close() }
    let prefix = "unix://" + runDir
    let agents = try await launcher.runningAgents(withArgumentWhere: { $0.hasPrefix(prefix) })
    return Dictionary(agents.map { ($0.pid, $0.argument) }, uniquingKeysWith: { a, _ in a })
  }

  /// One pod's client: a session made once, then classifications on it in a loop, each
  /// tenth call also a fresh connection with a session of its own (a new process in the pod).
  final class PodClient: Sendable {
    let socket: String
    let calls = Atomic<Int>(0)
    let failures = Mutex<[String]>([])
    /// The slowest call, for RELIABILITY.md (VDP_ROLLOUT_REPORT=1 prints it).
    let slowest = Mutex<Duration>(.zero)
    let stopping = Atomic<Bool>(false)
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(socket: String) {
      self.socket = socket
    }

    func start() {
      task.withLock { $0 = Task { await self.loop() } }
    }

    private func loop() async {
      do {
        try await TTRPCClient.withConnection(to: .unix(path: socket), timeout: .seconds(600)) { [self] connection in
          let session = try await connection.call(
            service: VaccelAgentService.sync, method: "CreateSession", request: Vaccel_Session_CreateRequest(),
            as: Vaccel_Session_CreateResponse.self
          ).sessionID
          while !stopping.load(ordering: .relaxed) {
            let request = Vaccel_Image_Request.with { $0.sessionID = session; $0.image = Data([1, 2, 3]) }
            do {
              let began = ContinuousClock.now
              _ = try await connection.call(
                service: VaccelAgentService.sync, method: "ImageClassification", request: request,
                as: Vaccel_Image_Response.self)
              let took = ContinuousClock.now - began
              slowest.withLock { $0 = max($0, took) }
              if calls.add(1, ordering: .relaxed).newValue % 10 == 0 {
                _ = try await TTRPCClient.withConnection(to: .unix(path: socket), timeout: .seconds(5)) {
                  try await $0.call(
                    service: VaccelAgentService.sync, method: "CreateSession", request: Vaccel_Session_CreateRequest(),
                    as: Vaccel_Session_CreateResponse.self)
                }
              }
            } catch {
              // A failed call ends this client: retrying at once could fail without ever
              // suspending, and a loop like that holds a thread of the cooperative pool (two
              // here) until the test that would stop it cannot run.
              failures.withLock { $0.append("call \(calls.load(ordering: .relaxed)): \(error)") }
              return
            }
          }
        }
      } catch {
        failures.withLock { $0.append("connection: \(error)") }
      }
    }

    /// Returns once the client has made `count` more calls, or failed.
    func makes(_ count: Int, within limit: Duration = .seconds(60)) async throws {
      let target = calls.load(ordering: .relaxed) + count
      try await poll(until: { calls.load(ordering: .relaxed) >= target || !failures.withLock { $0.isEmpty } },
                     within: limit, what: "\(count) more calls on \(socket)")
    }

    /// Returns once a call has failed: the next one a running client makes, if none has yet.
    func fails(within limit: Duration = .seconds(60)) async throws {
      try await poll(until: { !failures.withLock { $0.isEmpty } }, within: limit, what: "a failed call on \(socket)")
    }

    /// Polls what the client's loop records (it pushes nothing) until `done`, or throws at `limit`.
    private func poll(until done: () -> Bool, within limit: Duration, what: String) async throws {
      let deadline = ContinuousClock.now + limit
      while !done() {
        guard ContinuousClock.now < deadline else { throw TimedOut(what: what) }
        try await Task.sleep(for: .milliseconds(5))
      }
    }

    func stop() async {
      stopping.store(true, ordering: .relaxed)
      await task.withLock { $0 }?.value
    }
  }

  /// Three pods admitted through the emulated kubelet, each with its client calling.
  func admitThreePods(_ kubelet: FakeKubelet, _ podResources: FakePodResourcesServer) async throws -> [PodClient] {
    var clients: [PodClient] = []
    var holders: [String: Holder] = [:]
    for (index, pod) in ["a", "b", "c"].enumerated() {
      let reply = try await kubelet.admit("vaccel.org/accel", [["accel-\(index)"]])
      holders["accel-\(index)"] = Holder(namespace: "default", pod: pod, container: "main")
      clients.append(PodClient(socket: try reply.hostSocket))
    }
    podResources.set("vaccel.org/accel", holders: holders)
    for client in clients { client.start() }
    for client in clients { try await client.makes(20) }
    return clients
  }

  @Test func threePodsCallThroughDaemonRolloutsWithoutAFailure() async throws {
    let config = try writeConfig(agentHost: true)
    let (kubelet, podResources) = try await startKubelet()
    defer { Task { await kubelet.stop(); await podResources.stop() } }
    let host = try startHost()

    var daemon = try await Contained.start([Fixtures.daemon, "--config", config])
    _ = try await kubelet.wait(for: "registration") { $0.registrations == 1 && $0.healthy("vaccel.org/accel") == 4 }
    let clients = try await admitThreePods(kubelet, podResources)
    let podSockets = Set(clients.map { "unix://" + $0.socket })
    let before = try await hostedAgents().filter { podSockets.contains($0.value) }
    #expect(before.count == 3, "each pod has its agent in the host: \(before)")

    // Rollout 1: SIGTERM (what deleting the DaemonSet's pod does), then a new daemon.
    var gaps: [Duration] = []  // a new daemon's start to its registration
    #expect(await daemon.stop(SIGTERM) == 0, "\(daemon.outer.standardError)")
    for client in clients { try await client.makes(10) }  // the pods go on with no daemon at all
    var started = ContinuousClock.now
    daemon = try await Contained.start([Fixtures.daemon, "--config", config])
    _ = try await kubelet.wait(for: "re-registration") { $0.registrations == 2 && $0.healthy("vaccel.org/accel") == 4 }
    gaps.append(ContinuousClock.now - started)
    _ = try await waitForCheckpoint(stateDir: directory.sub("state")) { slots in
      slots.filter { $0.allocated }.compactMap(\.pid).sorted() == before.keys.sorted()
    }
    for client in clients { try await client.makes(30) }

    // Rollout 2: a daemon SIGKILLed (its pid namespace torn down with it), then a new one.
    #expect(await daemon.stop(SIGKILL) != 0)
    for client in clients { try await client.makes(10) }
    started = ContinuousClock.now
    daemon = try await Contained.start([Fixtures.daemon, "--config", config])
    _ = try await kubelet.wait(for: "re-registration") { $0.registrations == 3 && $0.healthy("vaccel.org/accel") == 4 }
    gaps.append(ContinuousClock.now - started)
    for client in clients { try await client.makes(30) }

    for client in clients { await client.stop() }
    let failures = clients.flatMap { $0.failures.withLock { $0 } }
    let calls = clients.map { $0.calls.load(ordering: .relaxed) }
    #expect(failures.isEmpty, "failed calls: \(failures.prefix(5)) (of \(calls) calls)")
    let after = try await hostedAgents().filter { podSockets.contains($0.value) }
    #expect(after == before, "the same agent processes serve the same pods")
    if ProcessInfo.processInfo.environment["VDP_ROLLOUT_REPORT"] == "1" {
      let slowest = clients.map { $0.slowest.withLock { $0 } }
      print("rollout report: calls \(calls), failed \(failures.count), slowest call per pod \(slowest), a new daemon's start to its registration \(gaps)")
    }

    // The pod goes: its agent stops and its socket goes, under the third daemon.
    podResources.set("vaccel.org/accel", holders: [
      "accel-1": Holder(namespace: "default", pod: "b", container: "main"),
      "accel-2": Holder(namespace: "default", pod: "c", container: "main"),
    ])
    let goneSocket = clients[0].socket
    _ = try await waitForCheckpoint(stateDir: directory.sub("state")) { !$0[0].allocated }
    let deadline = ContinuousClock.now + .seconds(20)
    while try await hostedAgents().values.contains("unix://" + goneSocket) || FileManager.default.fileExists(atPath: goneSocket) {
      guard ContinuousClock.now < deadline else { throw TimedOut(what: "the deleted pod's agent to stop") }
      try await Task.sleep(for: .milliseconds(20))  // the recycle is under way: poll its outcome
    }

    // Uninstalled: the daemon goes, then the host, and every agent with it.
    #expect(await daemon.stop(SIGTERM) == 0, "\(daemon.outer.standardError)")
    kill(host.process.processIdentifier, SIGTERM)
    #expect(await host.wait() == 0, "\(host.standardError)")
    let left = ProcessInfoReader.processes(withArgumentWhere: { $0.hasPrefix("unix://" + runDir) })
    #expect(left.isEmpty, "agents left after the host stopped: \(left)")
  }

  /// What a rollout of the agent host costs: its agents stop with it, and the daemon starts
  /// them again in the same places once a new host answers.
  @Test func aNewAgentHostGetsThePodsAgentsBack() async throws {
    let config = try writeConfig(agentHost: true)
    let (kubelet, podResources) = try await startKubelet()
    defer { Task { await kubelet.stop(); await podResources.stop() } }
    var host = try startHost()
    let daemon = try ChildProcess(Fixtures.daemon, ["--config", config])
    _ = try await kubelet.wait(for: "registration") { $0.registrations == 1 && $0.healthy("vaccel.org/accel") == 4 }
    let socket = try await kubelet.admit("vaccel.org/accel", [["accel-0"]]).hostSocket
    podResources.set("vaccel.org/accel", holders: ["accel-0": Holder(namespace: "default", pod: "a", container: "main")])
    let first = try #require(try await waitForCheckpoint(stateDir: directory.sub("state")) { $0[0].allocated && $0[0].pid != nil }[0].pid)
    _ = try await AgentProbe.sessionRoundTrip(.unix(path: socket), timeout: .seconds(5))

    kill(host.process.processIdentifier, SIGTERM)
    #expect(await host.wait() == 0, "\(host.standardError)")
    host = try startHost()
    let second = try #require(try await waitForCheckpoint(stateDir: directory.sub("state")) {
      $0[0].allocated && $0[0].pid != nil && $0[0].pid != first
    }[0].pid)
    // The checkpoint names the new agent once it is started; it answers once ready.
    _ = try await kubelet.preStart("vaccel.org/accel", ["accel-0"])
    _ = try await AgentProbe.sessionRoundTrip(.unix(path: socket), timeout: .seconds(5))
    #expect(try await hostedAgents()[second] == "unix://" + socket, "the new host runs the pod's agent in its place")

    kill(daemon.process.processIdentifier, SIGTERM)
    #expect(await daemon.wait() == 0, "\(daemon.standardError)")
    kill(host.process.processIdentifier, SIGTERM)
    #expect(await host.wait() == 0)
    let left = ProcessInfoReader.processes(withArgumentWhere: { $0.hasPrefix("unix://" + runDir) })
    #expect(left.isEmpty, "agents left after the host stopped: \(left)")
  }

  /// The control: without the agent host, the same loop sees the rollout.
  @Test func withoutTheAgentHostARolloutFailsCalls() async throws {
    let config = try writeConfig(agentHost: false)
    let (kubelet, podResources) = try await startKubelet()
    defer { Task { await kubelet.stop(); await podResources.stop() } }

    let daemon = try await Contained.start([Fixtures.daemon, "--config", config])
    _ = try await kubelet.wait(for: "registration") { $0.registrations == 1 && $0.healthy("vaccel.org/accel") == 4 }
    let clients = try await admitThreePods(kubelet, podResources)
    #expect(await daemon.stop(SIGTERM) == 0, "\(daemon.outer.standardError)")
    // Each client's next call fails, whenever its loop runs again: one that had just had an
    // answer when its agent went, and was not scheduled again before a stop, made no call to
    // fail (a loaded CI run once ended so). A client whose calls go on succeeding times out.
    for client in clients { try await client.fails(within: .seconds(30)) }
    for client in clients { await client.stop() }
  }

  @Test func aSecondAgentHostExits1NamingTheFirst() async throws {
    let host = try startHost()
    _ = try await hostedAgents()  // answers: it serves
    let second = try await ChildProcess.run(Fixtures.daemon, ["agent-host", "--socket", hostSocket])
    #expect(second.status == 1)
    #expect(second.error.contains("another agent host (pid \(host.process.processIdentifier)) serves \(hostSocket)"), "\(second.error)")
    _ = try await hostedAgents()  // the first still serves
    kill(host.process.processIdentifier, SIGTERM)
    #expect(await host.wait() == 0)
  }

  /// The host's API refuses what it cannot do, naming it, and runs nothing.
  @Test func theAgentHostRefusesBadRequestsNamingThem() async throws {
    let host = try startHost()
    _ = try await hostedAgents()  // it serves
    let transport = try HTTP2ClientTransport.Posix(
      target: .unixDomainSocket(path: hostSocket, authority: "localhost"), transportSecurity: .plaintext)
    try await withGRPCClient(transport: transport) { grpc in
      let client = Vaccel_Agenthost_V1_AgentHost.Client(wrapping: grpc)
      let instance = try await client.list(.init()).hostInstance
      func refusal(_ call: () async throws -> Void) async -> RPCError? {
        do {
          try await call()
          return nil
        } catch {
          return error as? RPCError
        }
      }
      var error = await refusal { _ = try await client.launch(.with { $0.executable = "vaccel-rpc-agent" }) }
      #expect(error?.code == .invalidArgument && error?.message.contains("'vaccel-rpc-agent'") == true, "\(String(describing: error))")
      error = await refusal { _ = try await client.launch(.with { $0.executable = self.directory.sub("missing-agent") }) }
      #expect(error?.code == .failedPrecondition && error?.message.contains("missing-agent") == true, "\(String(describing: error))")
      error = await refusal { _ = try await client.signal(.with { $0.hostInstance = instance; $0.pid = 1; $0.signal = 0 }) }
      #expect(error?.code == .invalidArgument, "\(String(describing: error))")
      error = await refusal { _ = try await client.wait(.with { $0.hostInstance = "another"; $0.pid = 1 }) }
      #expect(error?.code == .notFound, "\(String(describing: error))")
      #expect(try await client.list(.init()).processes.isEmpty, "nothing was started")
    }
    kill(host.process.processIdentifier, SIGTERM)
    #expect(await host.wait() == 0)
  }

  @Test(arguments: [
    (["agent-host", "--socket", "relative.sock"], "--socket 'relative.sock' is not an absolute path"),
    (["agent-host", "--stop-grace=-1"], "--stop-grace -1 is not 0 to 300 seconds"),
    (["agent-host", "--log-level", "loud"], "--log-level 'loud' is not one of"),
  ])
  func badAgentHostFlagsExit2NamingThem(arguments: [String], message: String) async throws {
    let run = try await ChildProcess.run(Fixtures.daemon, arguments)
    #expect(run.status == 2)
    #expect(run.error.contains(message), "\(run.error)")
  }
}
