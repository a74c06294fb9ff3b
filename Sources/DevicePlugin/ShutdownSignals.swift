import CVaccelSystem
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import ServiceLifecycle

/// SIGTERM, SIGINT and SIGHUP, trapped from the first moment of the process: the executable
/// calls `trap()` before it parses a flag, so a signal during start-up, recovery or adoption is
/// a request to stop cleanly like any other, never the default action (which ends the daemon
/// with its agents running and their sockets left behind). A SIGHUP is a request to reload the
/// configuration, kept until `LogLevelReloader` reads it.
public final class ShutdownSignals: Sendable {
  /// The number of every SIGTERM or SIGINT received, in order.
  public let requests: AsyncStream<Int32>
  /// One element after any number of SIGHUPs since the last one was read.
  public let reloads: AsyncStream<Void>
  private let pipe: Int32
  private let continuation: AsyncStream<Int32>.Continuation
  private let reloadContinuation: AsyncStream<Void>.Continuation

  private init(pipe: Int32) {
    self.pipe = pipe
    (requests, continuation) = AsyncStream.makeStream(of: Int32.self)
    (reloads, reloadContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
  }

  public struct Failure: Error, CustomStringConvertible {
    public var errno: Int32
    public var description: String { "cannot trap SIGTERM and SIGINT: \(String(cString: strerror(errno)))" }
  }

  /// Installs the handlers (once per process). The signals that come are kept in a pipe until
  /// `readOnThisThread()` reads them.
  public static func trap() throws(Failure) -> ShutdownSignals {
    let fd = vdp_trap_shutdown_signals()
    guard fd >= 0 else { throw Failure(errno: errno) }
    return ShutdownSignals(pipe: fd)
  }

  /// Reads the signals into `requests` and `reloads`, on the calling thread, for the rest of
  /// the process: the main thread's job once it has started everything else. A blocking read,
  /// so it works whatever the event loop is doing (the handler itself can only write to a pipe).
  public func readOnThisThread() -> Never {
    var byte: UInt8 = 0
    while true {
      let count = read(pipe, &byte, 1)
      if count < 0 && errno == EINTR { continue }
      guard count == 1 else { break }
      switch Int32(byte) {
      case SIGTERM, SIGINT: continuation.yield(Int32(byte))
      case SIGHUP: reloadContinuation.yield()
      default: break
      }
    }
    continuation.finish()
    reloadContinuation.finish()
    while true { pause() }  // never: the pipe's write end stays open in the handler
  }
}

/// A request to stop, whenever it comes: before the service group exists it is kept, and the
/// group is told the moment it is attached.
actor StopRequest {
  private(set) var requested = false
  private var group: ServiceGroup?

  func request() async {
    requested = true
    await group?.triggerGracefulShutdown()
  }

  func attach(_ group: ServiceGroup) async {
    self.group = group
    if requested { await group.triggerGracefulShutdown() }
  }
}
