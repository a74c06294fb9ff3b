#if canImport(Glibc)
import Glibc
#endif
public import Logging
import NodeSupport
import VaccelAgents

/// `vaccel-device-plugin agent-host`: owns the node's agent processes so that they outlive
/// the device plugin. It serves `AgentHost` on a unix socket (mode 0600) until SIGTERM/SIGINT,
/// then stops every agent (SIGTERM, `grace`, SIGKILL) and exits. One per node: a second one
/// finds the lock beside the socket held and exits 1.
public struct AgentHostDaemon: Sendable {
  public var socket: String
  public var grace: Duration
  let logger: Logger

  public init(socket: String, grace: Duration, logger: Logger) {
    self.socket = socket
    self.grace = grace
    self.logger = logger
  }

  public struct Failure: Error, CustomStringConvertible {
    public var description: String
  }

  public func run(stopRequests: AsyncStream<Int32>) async throws(Failure) {
    let folder = Directories.parent(of: socket)
    let lock: OwnerLock
    do {
      try Directories.create(folder)
      lock = try OwnerLock(folder: folder)
    } catch let OwnerLock.Failure.held(_, _, owner) {
      throw Failure(description: "another agent host (pid \(owner.map(String.init) ?? "unknown")) serves \(socket)")
    } catch {
      throw Failure(description: "cannot take the lock in \(folder): \(error)")
    }
    defer { withExtendedLifetime(lock) {} }
    let monitor: ProcessMonitor
    do {
      // The host is its container's first process: it reaps every orphan, as init would.
      monitor = try ProcessMonitor(reapOrphans: true, logger: logger)
    } catch {
      throw Failure(description: "cannot watch processes: \(error)")
    }
    defer { monitor.shutdown() }
    let service = AgentHostService(launcher: PosixLauncher(monitor: monitor), logger: logger)
    let server: PluginServer
    do {
      server = try await PluginServer.start(path: socket, mode: 0o600, services: [service])
    } catch {
      throw Failure(description: "cannot serve \(socket): \(error)")
    }
    logger.info("agent host serving", metadata: ["socket": "\(socket)", "instance": "\(service.instance)"])
    for await signal in stopRequests {
      logger.notice("stopping; every agent stops with the host", metadata: ["signal": "\(signal)", "agents": "\(service.runningCount)"])
      break
    }
    await service.stopAll(grace: grace)
    await server.stop(grace: .milliseconds(500))
    server.removeSocketFile()
    logger.info("stopped")
  }
}
