import AgentHostAPI
#if canImport(Glibc)
import Glibc
#endif
import GRPCCore
import GRPCUnixClient
public import Logging
import Synchronization
public import VaccelAgents

/// Agents started by the agent host (`vaccel-device-plugin agent-host`), which owns them, so
/// they outlive this daemon: a rollout replaces the daemon's container and everything started
/// in it, and the pods' agents are not in it. `SlotAgent` cannot tell these from its own
/// children: it probes them on the same sockets, and asks the host to signal and wait.
public final class HostedLauncher: ProcessLaunching {
  public let socket: String
  /// How long start-up waits for the host to answer before the daemon gives up (exit 1, and
  /// the kubelet restarts it): starting agents without knowing which run would take over the
  /// sockets of those still serving pods.
  public let patience: Duration
  private let client: GRPCClient<UnixClientTransport>
  private let connections: Task<Void, Never>
  private let closed = Atomic<Bool>(false)
  /// The host instance and pids of the last `List`: recovery adopts what it just listed
  /// without asking again per slot.
  private let lastListed = Mutex<(instance: String, pids: Set<pid_t>)?>(nil)
  let logger: Logger

  public init(socket: String, patience: Duration = .seconds(60), logger: Logger) throws {
    self.socket = socket
    self.patience = patience
    self.logger = logger
    let transport = UnixClientTransport(
      path: socket, authority: "localhost",
      backoff: .init(initial: .milliseconds(100), max: .seconds(1), multiplier: 1.6, jitter: 0.1))
    let client = GRPCClient(transport: transport)
    self.client = client
    self.connections = Task { try? await client.runConnections() }
  }

  public var agentsOutliveDaemon: Bool { true }
  var isClosed: Bool { closed.load(ordering: .relaxed) }
  var host: AgentHostV1.Client<UnixClientTransport> { .init(wrapping: client) }

  /// Stops talking to the host (the daemon is done); processes stay the host's.
  public func close() {
    guard !closed.exchange(true, ordering: .relaxed) else { return }
    client.beginGracefulShutdown()
    connections.cancel()
  }

  static func options(timeout: Duration?) -> CallOptions {
    var options = CallOptions.defaults
    options.timeout = timeout
    options.waitForReady = true
    return options
  }

  func failure(_ what: String, _ error: any Error) -> LaunchError {
    let reason = (error as? RPCError).map { "\($0.code): \($0.message)" } ?? "\(error)"
    return LaunchError(what: "\(what) (agent host at \(socket))", errno: EIO, reason: reason)
  }

  public func launchAgent(_ spec: LaunchSpec) async throws(LaunchError) -> any AgentProcess {
    var request = Vaccel_Agenthost_V1_LaunchRequest()
    request.executable = spec.executable
    request.arguments = spec.arguments
    request.environment = spec.environment
    request.logPath = spec.logPath ?? ""
    request.prepareFolders = spec.prepareFolders
    let started: Vaccel_Agenthost_V1_Process
    do {
      started = try await host.launch(request, options: Self.options(timeout: .seconds(10)))
    } catch {
      throw failure("spawn \(spec.executable)", error)
    }
    return HostedProcess(pid: started.pid, instance: started.hostInstance, launcher: self)
  }

  public func runningAgents(withArgumentWhere matches: @Sendable (String) -> Bool) async throws(LaunchError) -> [RunningAgent] {
    let listed = try await list()
    return listed.processes.flatMap { process in
      process.arguments.filter(matches).map {
        RunningAgent(pid: process.pid, argument: $0, slot: process.environment[SlotAddressing.slotMarker])
      }
    }
  }

  /// The host's processes; waits for the host up to `patience`, saying so every few seconds.
  func list() async throws(LaunchError) -> Vaccel_Agenthost_V1_ListResponse {
    let deadline = ContinuousClock.now + patience
    var lastError: (any Error)?
    while true {
      do {
        let listed = try await host.list(Vaccel_Agenthost_V1_ListRequest(), options: Self.options(timeout: .seconds(5)))
        if lastError != nil { logger.notice("the agent host answers", metadata: ["socket": "\(socket)"]) }
        lastListed.withLock { $0 = (listed.hostInstance, Set(listed.processes.map(\.pid))) }
        return listed
      } catch {
        if lastError == nil {
          logger.warning(
            "waiting for the agent host (is the vaccel-agent-host pod running on this node?)",
            metadata: ["socket": "\(socket)", "error": "\(failure("list", error).reason ?? "")"])
        }
        lastError = error
        guard ContinuousClock.now < deadline, !isClosed else { throw failure("no answer within \(patience)", error) }
        try? await Task.sleep(for: .milliseconds(200))
      }
    }
  }

  /// A pid of the last list is watched as it is (one that ended since gets its exit from the
  /// host's `Wait`); any other is looked for in a new list.
  public func attach(pid: pid_t) async -> (any AgentProcess)? {
    if let known = lastListed.withLock({ $0 }), known.pids.contains(pid) {
      return HostedProcess(pid: pid, instance: known.instance, launcher: self)
    }
    guard let listed = try? await list(), listed.processes.contains(where: { $0.pid == pid }) else { return nil }
    return HostedProcess(pid: pid, instance: listed.hostInstance, launcher: self)
  }
}

/// An agent the host runs: its exit comes from the host's `Wait`, asked again after a lost
/// connection, until the host answers. Only the host's word ends it: a daemon that lost its
/// connection must not start a second agent on a socket the first still serves.
final class HostedProcess: AgentProcess {
  let pid: pid_t
  let instance: String
  private let launcher: HostedLauncher
  private let exit = ExitLatch()

  /// Watches at once: the watch (and with it this object) lasts until the host reports the
  /// exit or the launcher is closed.
  init(pid: pid_t, instance: String, launcher: HostedLauncher) {
    self.pid = pid
    self.instance = instance
    self.launcher = launcher
    Task { await self.watch() }
  }

  var exitStatus: ExitStatus? { exit.status }

  func waitForExit() async -> ExitStatus {
    await exit.wait()
  }

  private func watch() async {
    var request = Vaccel_Agenthost_V1_WaitRequest()
    request.hostInstance = instance
    request.pid = pid
    var delay: Duration = .milliseconds(50)
    var warned = false
    while !Task.isCancelled && !launcher.isClosed {
      do {
        let status = try await launcher.host.wait(request, options: HostedLauncher.options(timeout: nil))
        exit.finish(ExitStatus(status))
        return
      } catch let error as RPCError where error.code == .notFound {
        // Another host instance ran it (the host was restarted): it ended with that host.
        exit.finish(.unknown)
        return
      } catch {
        if !warned {
          launcher.logger.warning(
            "lost the agent host while watching an agent; asking again",
            metadata: ["pid": "\(pid)", "error": "\(launcher.failure("wait", error).reason ?? "")"])
          warned = true
        }
        try? await Task.sleep(for: delay)
        delay = min(delay * 2, .seconds(1))
      }
    }
  }

  @discardableResult
  func signal(_ signal: Int32) async -> Bool {
    guard exit.status == nil else { return false }
    var request = Vaccel_Agenthost_V1_SignalRequest()
    request.hostInstance = instance
    request.pid = pid
    request.signal = signal
    do {
      return try await launcher.host.signal(request, options: HostedLauncher.options(timeout: .seconds(5))).delivered
    } catch {
      launcher.logger.warning(
        "cannot signal an agent through the agent host",
        metadata: ["pid": "\(pid)", "signal": "\(signal)", "error": "\(launcher.failure("signal", error).reason ?? "")"])
      return false
    }
  }

  /// SIGTERM, SIGKILL after `grace`; returns once the host reports the exit, or after a few
  /// more seconds without an answer (a host that is gone took its agents with it).
  func terminate(grace: Duration) async {
    guard exit.status == nil else { return }
    await signal(SIGTERM)
    if await exit.wait(within: grace) != nil { return }
    await signal(SIGKILL)
    if await exit.wait(within: .seconds(5)) == nil {
      launcher.logger.warning("the agent host did not report the end of a stopped agent", metadata: ["pid": "\(pid)"])
    }
  }
}
