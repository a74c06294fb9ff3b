/// How the daemon runs the `vaccel-rpc-agent` behind each slot.
public struct AgentConfig: Sendable, Equatable {
  /// A name looked up on PATH, then in /usr/local/bin and /usr/bin; or an absolute path.
  public var binary: String
  /// Arguments; `{address}` becomes the slot's listen address (`unix://…`, `vsock://…`, `tcp://…`).
  public var args: [String]
  /// Host plugins, joined into `VACCEL_PLUGINS`.
  public var plugins: [String]
  /// `LD_LIBRARY_PATH` for the agent (where libvaccel and its plugins live).
  public var libraryPath: String?
  /// `VACCEL_LOG_LEVEL` (1 error … 4 debug).
  public var logLevel: Int?
  /// Further environment for the agent.
  public var env: [String: String]
  /// What "ready" means: a ttrpc session round trip, an accepted connection, or a live process.
  public var probe: ProbeMode
  public var probeTimeout: Duration
  /// How long Allocate/PreStartContainer wait for an agent before answering UNAVAILABLE.
  public var readyTimeout: Duration
  /// SIGTERM, then SIGKILL after this long.
  public var stopGracePeriod: Duration
  public var restartBackoffInitial: Duration
  public var restartBackoffMax: Duration
  /// An agent that ran this long healthy starts its back-off from the beginning again.
  public var restartBackoffReset: Duration
  /// Each agent's log file is kept under about this size (plus one rotated file).
  public var logMaxBytes: Int
  /// Which of an agent's lines also go into the daemon's own log (all of them stay in the
  /// agent's file). The tail of a crashed agent's log is forwarded whatever this says.
  public var forwardLogs: AgentLogForwarding
  /// The CID a vsock agent listens on (-1: any).
  public var vsockListenCID: Int64
  /// How often the node checks (agent binary, plugins) run again.
  public var nodeCheckInterval: Duration
  /// A ready agent is probed this often; zero turns it off (and `probe: process` never does).
  public var livenessInterval: Duration
  /// Probes failed in a row before an unresponsive (hung) agent is killed and restarted.
  public var livenessFailures: Int

  public init(
    binary: String = "vaccel-rpc-agent",
    args: [String] = ["-a", "{address}"],
    plugins: [String] = [],
    libraryPath: String? = nil,
    logLevel: Int? = nil,
    env: [String: String] = [:],
    probe: ProbeMode = .session,
    probeTimeout: Duration = .seconds(2),
    readyTimeout: Duration = .seconds(10),
    stopGracePeriod: Duration = .seconds(5),
    restartBackoffInitial: Duration = .milliseconds(500),
    restartBackoffMax: Duration = .seconds(30),
    restartBackoffReset: Duration = .seconds(60),
    logMaxBytes: Int = 1 << 20,
    forwardLogs: AgentLogForwarding = .warning,
    vsockListenCID: Int64 = -1,
    nodeCheckInterval: Duration = .seconds(10),
    livenessInterval: Duration = .seconds(10),
    livenessFailures: Int = 3
  ) {
    self.binary = binary
    self.args = args
    self.plugins = plugins
    self.libraryPath = libraryPath
    self.logLevel = logLevel
    self.env = env
    self.probe = probe
    self.probeTimeout = probeTimeout
    self.readyTimeout = readyTimeout
    self.stopGracePeriod = stopGracePeriod
    self.restartBackoffInitial = restartBackoffInitial
    self.restartBackoffMax = restartBackoffMax
    self.restartBackoffReset = restartBackoffReset
    self.logMaxBytes = logMaxBytes
    self.forwardLogs = forwardLogs
    self.vsockListenCID = vsockListenCID
    self.nodeCheckInterval = nodeCheckInterval
    self.livenessInterval = livenessInterval
    self.livenessFailures = livenessFailures
  }

  public static let addressPlaceholder = "{address}"

  /// The agent's environment on top of the daemon's own (which it does not inherit).
  public var environment: [String: String] {
    var environment = env
    if !plugins.isEmpty { environment["VACCEL_PLUGINS"] = plugins.joined(separator: ":") }
    if let libraryPath { environment["LD_LIBRARY_PATH"] = libraryPath }
    if let logLevel { environment["VACCEL_LOG_LEVEL"] = "\(logLevel)" }
    return environment
  }
}

public enum ProbeMode: String, Sendable, Equatable, CaseIterable {
  /// `CreateSession` then `DestroySession` on the agent's ttrpc service.
  case session
  /// The socket accepts a connection.
  case connect
  /// The process is alive.
  case process
}

/// Who starts the agents of a resource.
public enum AgentManagement: String, Sendable, Equatable, CaseIterable {
  /// The daemon starts, probes, restarts and recycles one agent per slot.
  case managed
  /// The sandbox runtime starts its own (the Kata-vAccel runtimes do, per sandbox): the daemon
  /// only counts capacity and hands out annotations.
  case runtime
}

/// The least severe agent line the daemon forwards into its own log. The agents' per-call
/// `info` lines were 98.6 % of a busy node's daemon log, and pushed the daemon's own history
/// out of `kubectl logs` within minutes: by default only warnings and errors go.
public enum AgentLogForwarding: String, Sendable, Equatable, CaseIterable {
  case debug, info, warning, error, off
}
