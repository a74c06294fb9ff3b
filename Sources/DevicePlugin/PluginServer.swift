#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import NodeSupport
import GRPCCore
import GRPCNIOTransportCore
import GRPCUnixServer

/// One running gRPC server on a unix socket: a plugin socket (a new one is started whenever the
/// kubelet wipes the folder) or the status socket.
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
  static func start(
    path: String, mode: mode_t? = nil, group: gid_t? = nil, services: [any RegistrableRPCService]
  ) async throws -> PluginServer {
    let transport = Transport.unixSocket(path: path, mode: mode, group: group)
    let server = GRPCServer(transport: transport, services: services)
    let task = Task { try await server.serve() }
    guard await transport.listeningAddress != nil else {
      task.cancel()
      if case .failure(let cause) = await task.result { throw cause }
      throw PluginError.internal("the server on \(path) stopped before it listened")
    }
    return PluginServer(path: path, identity: Directories.identity(of: path), server: server, task: task)
  }

  /// Graceful: no new RPCs, running ones finish (the caller ends `ListAndWatch` streams), and
  /// after `grace` whatever is left is cancelled. Not graceful (`nil`): the same with a short
  /// grace (never a bare cancel: see `GRPCServer.stop(serving:deadline:)`).
  func stop(grace: Duration?) async {
    await server.stop(serving: task, deadline: grace ?? .milliseconds(200))
  }

  /// Removes the socket file if it is still the one this server bound.
  func removeSocketFile() {
    guard let identity, let current = Directories.identity(of: path), current.isSameFile(as: identity) else { return }
    Directories.remove(path)
  }
}
