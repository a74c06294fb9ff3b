import NodeSupport
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import GRPCUnixServer

/// One running gRPC server on the plugin socket. A new one is started whenever the socket
/// file disappears (the kubelet wipes the folder when it restarts).
final class PluginServer: Sendable {
  typealias Transport = HTTP2ServerTransport.Custom<UnixSocketListener>

  let path: String
  let identity: FileIdentity?
  private let server: GRPCServer<Transport>
  private let task: Task<Void, any Error>

  private init(path: String, identity: FileIdentity?, server: GRPCServer<Transport>, task: Task<Void, any Error>) {
    self.path = path
    self.identity = identity
    self.server = server
    self.task = task
  }

  /// Returns once the socket accepts connections (the kubelet dials back inside Register).
  static func start(path: String, service: DevicePluginService) async throws -> PluginServer {
    let transport = Transport.unixSocket(path: path)
    let server = GRPCServer(transport: transport, services: [service])
    let task = Task { try await server.serve() }
    guard await transport.listeningAddress != nil else {
      task.cancel()
      if case .failure(let cause) = await task.result { throw cause }
      throw PluginError.internal("the server on \(path) stopped before it listened")
    }
    return PluginServer(path: path, identity: Directories.identity(of: path), server: server, task: task)
  }

  /// Graceful: no new RPCs, running ones finish (the caller ends `ListAndWatch` streams), and
  /// after `grace` whatever is left is cancelled. Not graceful: cancel at once.
  func stop(grace: Duration?) async {
    guard let grace else {
      task.cancel()
      _ = await task.result
      return
    }
    server.beginGracefulShutdown()
    let task = self.task
    let deadline = Task {
      try await Task.sleep(for: grace)
      task.cancel()
    }
    _ = await task.result
    deadline.cancel()
  }

  /// Removes the socket file if it is still the one this server bound.
  func removeSocketFile() {
    guard let identity, let current = Directories.identity(of: path), current.isSameFile(as: identity) else { return }
    Directories.remove(path)
  }
}
