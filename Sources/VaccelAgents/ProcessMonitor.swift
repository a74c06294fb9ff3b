import CVaccelSystem
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import NodeSupport
public import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// How a watched process ended.
public enum ExitStatus: Sendable, Equatable, CustomStringConvertible {
  case exited(Int32)
  case signaled(Int32)
  /// A process we adopted but did not start: its real parent collected the status.
  case unknown

  init(waitStatus status: Int32) {
    self = status & 0x7F == 0 ? .exited((status >> 8) & 0xFF) : .signaled(status & 0x7F)
  }

  public var description: String {
    switch self {
    case .exited(let code): return "exited with code \(code)"
    case .signaled(let signal):
      let name = [SIGABRT: "SIGABRT", SIGKILL: "SIGKILL", SIGTERM: "SIGTERM", SIGSEGV: "SIGSEGV", SIGINT: "SIGINT"][signal]
      return "killed by \(name ?? "signal \(signal)") (exit \(128 + signal))"
    case .unknown: return "exited (status unknown: not our child)"
    }
  }
}

/// A process watched through a pidfd: exit is an event, signals never reach a reused pid.
public final class MonitoredProcess: Sendable {
  public let pid: pid_t
  let pidfd: Int32
  private let exit = ExitLatch()

  init(pid: pid_t, pidfd: Int32) {
    self.pid = pid
    self.pidfd = pidfd
  }

  public var exitStatus: ExitStatus? { exit.status }

  public func waitForExit() async -> ExitStatus {
    await exit.wait()
  }

  /// `waitForExit`, ended early (nil) when the calling task is cancelled: for a waiter that
  /// may go away first (an agent host's `Wait` whose caller hung up).
  public func exitUnlessCancelled() async -> ExitStatus? {
    await exit.wait(within: nil)
  }

  /// Signals the process and its process group (agents are group leaders, so helpers they
  /// started go too). Returns false when it has already exited.
  @discardableResult
  public func signal(_ signal: Int32) -> Bool {
    // A pidfd never reaches a reused pid; the group kill is for helpers the agent started,
    // sent only while the leader is alive (so its group id cannot have been reused).
    // Where pidfd_send_signal is refused as unknown (ENOSYS: a seccomp profile older than it,
    // valgrind), the plain pid is signalled: still the same process while it is not reaped.
    guard exit.status == nil else { return false }
    let sent = vdp_pidfd_send_signal(pidfd, signal) == 0 || (errno == ENOSYS && kill(pid, signal) == 0)
    if sent { _ = kill(-pid, signal) }
    return true
  }

  /// SIGTERM, then SIGKILL if it is still there after `grace`; returns once it has exited.
  /// How every agent is stopped: the daemon's own, a previous daemon's leftovers, a trial run.
  public func terminate(grace: Duration) async {
    guard signal(SIGTERM) else { return }
    let killer = Task {
      try await Task.sleep(for: grace)
      self.signal(SIGKILL)
    }
    _ = await waitForExit()
    killer.cancel()
  }

  func finish(_ status: ExitStatus) {
    exit.finish(status)
  }
}

/// Watches processes on one dedicated thread blocked in `poll(2)` on their pidfds; reaps our
/// children (no zombies) and, as a child subreaper, the orphans of our agents.
public final class ProcessMonitor: Sendable {
  private struct Watched {
    let process: MonitoredProcess
    let isChild: Bool
  }

  private let registry = Mutex<(watched: [Int32: Watched], reaped: [pid_t: ExitStatus], stopped: Bool)>(([:], [:], false))
  private let wakeRead: Int32
  private let wakeWrite: Int32
  private let reapOrphans: Bool
  private let logger: Logger

  /// `reapOrphans` makes this process a child subreaper and reaps every child, ours or
  /// re-parented: only for the daemon process itself, where nothing else waits for children.
  public init(reapOrphans: Bool, logger: Logger) throws {
    var fds: [Int32] = [-1, -1]
    guard pipe(&fds) == 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
    for fd in fds {
      _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
      _ = fcntl(fd, F_SETFL, O_NONBLOCK)
    }
    wakeRead = fds[0]
    wakeWrite = fds[1]
    self.reapOrphans = reapOrphans
    self.logger = logger
    if reapOrphans && vdp_set_child_subreaper() != 0 {
      logger.warning("cannot become a child subreaper; orphans of agents are reaped by init", metadata: ["errno": "\(errno)"])
    }
    OSThread.start { [self] in self.run() }
  }

  /// Starts watching `pid`; `isChild` when we spawned it (then we also reap it).
  public func watch(pid: pid_t, isChild: Bool) throws -> MonitoredProcess {
    let pidfd = vdp_pidfd_open(pid)
    guard pidfd >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .ESRCH) }
    _ = fcntl(pidfd, F_SETFD, FD_CLOEXEC)
    let process = MonitoredProcess(pid: pid, pidfd: pidfd)
    registry.withLock { $0.watched[pidfd] = Watched(process: process, isChild: isChild) }
    wake()
    return process
  }

  public func shutdown() {
    registry.withLock { $0.stopped = true }
    wake()
  }

  public var watchedCount: Int { registry.withLock { $0.watched.count } }

  private func wake() {
    var byte: UInt8 = 1
    _ = write(wakeWrite, &byte, 1)
  }

  private func run() {
    var drain = [UInt8](repeating: 0, count: 64)
    while true {
      let (pidfds, stopped) = registry.withLock { (Array($0.watched.keys), $0.stopped) }
      if stopped { break }
      var fds = [pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
        + pidfds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
      // With orphans to reap, also sweep once a second: an orphan has no pidfd of ours.
      let ready = poll(&fds, nfds_t(fds.count), reapOrphans ? 1000 : -1)
      if ready < 0 && errno != EINTR { break }
      if fds[0].revents != 0 { while read(wakeRead, &drain, drain.count) > 0 {} }
      if reapOrphans { sweep() }
      for entry in fds.dropFirst() where entry.revents != 0 {
        resolve(entry.fd)
      }
    }
    close(wakeRead)
    close(wakeWrite)
  }

  private func resolve(_ pidfd: Int32) {
    guard let watched = registry.withLock({ $0.watched.removeValue(forKey: pidfd) }) else { return }
    let pid = watched.process.pid
    var status: ExitStatus = .unknown
    if watched.isChild {
      var raw: Int32 = 0
      if waitpid(pid, &raw, WNOHANG) == pid {
        status = ExitStatus(waitStatus: raw)
      } else if let swept = registry.withLock({ $0.reaped.removeValue(forKey: pid) }) {
        status = swept
      }
    }
    close(pidfd)
    watched.process.finish(status)
  }

  /// Reaps every exited child; statuses of watched ones are kept for `resolve`.
  private func sweep() {
    while true {
      var raw: Int32 = 0
      let pid = waitpid(-1, &raw, WNOHANG)
      guard pid > 0 else { return }
      let ours = registry.withLock { registry -> Bool in
        guard registry.watched.values.contains(where: { $0.process.pid == pid }) else { return false }
        registry.reaped[pid] = ExitStatus(waitStatus: raw)
        return true
      }
      if !ours {
        logger.debug("reaped an orphan", metadata: ["pid": "\(pid)"])
      }
    }
  }
}
