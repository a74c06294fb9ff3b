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

  public init(executable: String, arguments: [String], environment: [String: String], logPath: String?) {
    self.executable = executable
    self.arguments = arguments
    self.environment = environment
    self.logPath = logPath
  }
}

public struct LaunchError: Error, Equatable, CustomStringConvertible {
  public var what: String
  public var errno: Int32
  public var description: String { "\(what): \(String(cString: strerror(errno)))" }
}

/// Starts processes; the seam between supervision and the OS.
public protocol ProcessLaunching: Sendable {
  func launch(_ spec: LaunchSpec) throws(LaunchError) -> MonitoredProcess
}

/// posix_spawn (clean signal mask, own process group, no inherited fds) + pidfd watching.
public struct PosixLauncher: ProcessLaunching {
  public let monitor: ProcessMonitor

  public init(monitor: ProcessMonitor) {
    self.monitor = monitor
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
