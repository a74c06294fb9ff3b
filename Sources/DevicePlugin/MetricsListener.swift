public import Logging
public import ServiceLifecycle
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import Synchronization
public import VaccelMetrics

/// The /metrics, /healthz, /readyz listener as a service: bound at start, closed on shutdown.
public final class MetricsListener: Service, Sendable, CustomStringConvertible {
  let host: String
  let port: Int
  let metrics: DaemonMetrics
  let logger: Logger
  private let bound = Mutex<(port: Int?, waiters: [CheckedContinuation<Int, Never>])>((nil, []))

  public init?(address: String, metrics: DaemonMetrics, logger: Logger) {
    guard let (host, port) = MetricsServer.parse(address) else { return nil }
    self.host = host
    self.port = port
    self.metrics = metrics
    self.logger = logger
  }

  public var description: String { "MetricsListener(\(host):\(port))" }

  /// The port actually bound (useful with port 0); waits until bound.
  public var boundPort: Int {
    get async {
      await withCheckedContinuation { continuation in
        let port = bound.withLock { state -> Int? in
          if let port = state.port { return port }
          state.waiters.append(continuation)
          return nil
        }
        if let port { continuation.resume(returning: port) }
      }
    }
  }

  public func run() async throws {
    let channel: any Channel
    do {
      channel = try await MetricsServer.bind(host: host, port: port, metrics: metrics)
    } catch {
      // NIO's own text names its syscall, not our setting: say which one to change.
      let reason = (error as? IOError).map { String(cString: strerror($0.errnoCode)) } ?? "\(error)"
      throw PluginError.unavailable("metrics.address \(host):\(port): cannot listen: \(reason) (another process on that port? set metrics.address or --metrics-address)")
    }
    let actual = channel.localAddress?.port ?? port
    let waiters = bound.withLock { state in
      state.port = actual
      defer { state.waiters = [] }
      return state.waiters
    }
    for waiter in waiters { waiter.resume(returning: actual) }
    logger.info("metrics and health listening", metadata: ["address": "\(host):\(actual)"])
    try? await gracefulShutdown()
    try? await channel.close()
  }
}
