import CVaccelSystem
import Glibc

/// What to run for an agent.
public struct LaunchSpec: Sendable, Equatable {
  public var executable: String
  public var arguments: [String]
  /// The whole environment of the child: it inherits nothing from the daemon.
  public var environment: [String: String]
  /// stdout and stderr go here (appended), or to /dev/null when nil.
  public var logPath: String?
  /// Folders made (0700) where the process runs before it starts: libvaccel's run folder is
  /// in the mount namespace of whoever starts the agent (an agent host's, not the daemon's).
  public var prepareFolders: [String]

  public init(
    executable: String, arguments: [String], environment: [String: String], logPath: String?, prepareFolders: [String] = []
  ) {
    self.executable = executable
    self.arguments = arguments
    self.environment = environment
    self.logPath = logPath
    self.prepareFolders = prepareFolders
  }
}

public struct LaunchError: Error, Equatable, CustomStringConvertible {
  public var what: String
  public var errno: Int32
  /// Said instead of errno's text when there is no errno (an agent host's answer).
  public var reason: String?

  public init(what: String, errno: Int32, reason: String? = nil) {
    self.what = what
    self.errno = errno
    self.reason = reason
  }

  public var description: String { "\(what): \(reason ?? String(cString: strerror(errno)))" }
}

/// An agent process as its supervisor sees it, wherever it runs: our own child (watched by
/// pidfd) or an agent host's (watched over its API).
public protocol AgentProcess: AnyObject, Sendable {
  /// In the pid namespace of whoever started it.
  var pid: pid_t { get }
  /// nil while it runs.
  var exitStatus: ExitStatus? { get }
  func waitForExit() async -> ExitStatus
  /// The process and its process group; false when it has already exited.
  @discardableResult
  func signal(_ signal: Int32) async -> Bool
  /// SIGTERM, then SIGKILL after `grace`; returns once it has exited.
  func terminate(grace: Duration) async
}

/// An agent found running (a previous daemon's), by the words of its command line.
public struct RunningAgent: Sendable, Equatable {
  public var pid: pid_t
  /// The word of its command line that matched.
  public var argument: String
  /// Its `SlotAddressing.slotMarker` environment value, if it has one and it can be read.
  public var slot: String?

  public init(pid: pid_t, argument: String, slot: String?) {
    self.pid = pid
    self.argument = argument
    self.slot = slot
  }
}

/// Starts, finds and adopts agent processes: the seam between supervision and where agents
/// run (the daemon's own children, or an agent host's that outlive the daemon).
public protocol ProcessLaunching: Sendable {
  func launchAgent(_ spec: LaunchSpec) async throws(LaunchError) -> any AgentProcess
  /// Agents running now (not ours) with a command-line word that `matches`.
  func runningAgents(withArgumentWhere matches: @Sendable (String) -> Bool) async throws(LaunchError) -> [RunningAgent]
  /// Watches an agent found by `runningAgents`; nil when it is gone.
  func attach(pid: pid_t) async -> (any AgentProcess)?
  /// True when agents keep running after the daemon exits (an agent host owns them): the
  /// daemon then leaves them on SIGTERM for its successor to adopt.
  var agentsOutliveDaemon: Bool { get }
}

extension MonitoredProcess: AgentProcess {}

/// posix_spawn (clean signal mask, own process group, no inherited fds) + pidfd watching.
public struct PosixLauncher: ProcessLaunching {
  public let monitor: ProcessMonitor

  public init(monitor: ProcessMonitor) {
    self.monitor = monitor
  }

  public var agentsOutliveDaemon: Bool { false }

  public func launchAgent(_ spec: LaunchSpec) async throws(LaunchError) -> any AgentProcess {
    for folder in spec.prepareFolders {
      try? VaccelRunFolder.prepare(folder)
    }
    return try launch(spec)
  }

  public func runningAgents(withArgumentWhere matches: @Sendable (String) -> Bool) async throws(LaunchError) -> [RunningAgent] {
    ProcessInfoReader.processes(withArgumentWhere: matches).map {
      RunningAgent(pid: $0.pid, argument: $0.argument, slot: ProcessInfoReader.environmentValue(SlotAddressing.slotMarker, of: $0.pid))
    }
  }

  public func attach(pid: pid_t) async -> (any AgentProcess)? {
    try? monitor.watch(pid: pid, isChild: false)
  }

  public func launch(_ spec: LaunchSpec) throws(LaunchError) -> MonitoredProcess {
    let output = spec.logPath.map { open($0, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0o640) }
      ?? open("/dev/null", O_WRONLY | O_CLOEXEC)
    guard output >= 0 else { throw LaunchError(what: "open \(spec.logPath ?? "/dev/null")", errno: errno) }
    defer { close(output) }

    let argv = ([spec.executable] + spec.arguments).map { strdup($0) } + [nil]
    let envp = spec.environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
      argv.forEach { free($0) }
      envp.forEach { free($0) }
    }
    var pid: pid_t = 0
    let rc = vdp_spawn(spec.executable, argv, envp, output, output, &pid)
    guard rc == 0 else { throw LaunchError(what: "spawn \(spec.executable)", errno: rc) }
    do {
      return try monitor.watch(pid: pid, isChild: true)
    } catch {
      kill(pid, SIGKILL)
      var status: Int32 = 0
      waitpid(pid, &status, 0)
      throw LaunchError(what: "pidfd_open \(pid)", errno: errno)
    }
  }
}
