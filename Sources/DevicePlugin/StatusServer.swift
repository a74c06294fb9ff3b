#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import GRPCCore
import Logging
public import ServiceLifecycle
public import VaccelConfig

/// Serves the status API on its unix socket (mode and group from the config) until graceful
/// shutdown, then removes the socket. A second daemon finds the socket live and refuses.
public struct StatusServer: Service, CustomStringConvertible {
  public let path: String
  public let config: StatusConfig
  let service: StatusService
  let logger: Logger

  init(path: String, config: StatusConfig, service: StatusService, logger: Logger) {
    self.path = path
    self.config = config
    self.service = service
    self.logger = logger
  }

  public var description: String { "StatusServer(\(path))" }

  public func run() async throws {
    let server: PluginServer
    do {
      server = try await PluginServer.start(
        path: path, mode: mode_t(config.mode), group: config.group.map { gid_t($0) }, services: [service])
    } catch {
      throw PluginError.unavailable("cannot serve the status socket \(path): \(error)")
    }
    logger.info("serving status", metadata: ["socket": "\(path)", "mode": "\(String(config.mode, radix: 8))"])
    try? await gracefulShutdown()
    await server.stop(grace: .seconds(1))
    server.removeSocketFile()
  }
}
