import CVaccelSystem
import NodeSupport
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import ServiceLifecycle

/// SIGTERM and SIGINT, trapped from the first moment of the process: the executable calls
/// `trap()` before it parses a flag, so a signal during start-up, recovery or adoption is a
/// request to stop cleanly like any other, never the default action (which ends the daemon
/// with its agents running and their sockets left behind). SIGHUP is trapped too, and ignored
/// until `LogLevelReloader` takes it over.
public final class ShutdownSignals: Sendable {
  /// The number of every SIGTERM or SIGINT received, in order.
  public let requests: AsyncStream<Int32>

  private init(requests: AsyncStream<Int32>) {
    self.requests = requests
  }

  public struct Failure: Error, CustomStringConvertible {
    public var errno: Int32
    public var description: String { "cannot trap SIGTERM and SIGINT: \(String(cString: strerror(errno)))" }
  }

  /// Installs the handlers (once per process) and starts the thread that reads them.
  public static func trap() throws(Failure) -> ShutdownSignals {
    let fd = vdp_trap_shutdown_signals()
    guard fd >= 0 else { throw Failure(errno: errno) }
    let (requests, continuation) = AsyncStream.makeStream(of: Int32.self)
    // A blocking read on a thread of its own: the handler can only write to a pipe, and this
    // must work before (and whatever) the cooperative pool runs.
    OSThread.start {
      var byte: UInt8 = 0
      while true {
        let count = read(fd, &byte, 1)
        if count < 0 && errno == EINTR { continue }
        guard count == 1 else { break }
        if Int32(byte) == SIGTERM || Int32(byte) == SIGINT { continuation.yield(Int32(byte)) }
      }
      continuation.finish()
    }
    return ShutdownSignals(requests: requests)
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
