import GRPCCore
import GRPCNIOTransportHTTP2Posix

/// One double's gRPC server on a unix socket: served until stopped, and stopped gracefully
/// with a short deadline, never a bare cancel (`GRPCServer.stop(serving:deadline:)`).
struct ServedSocket: Sendable {
  private let server: GRPCServer<HTTP2ServerTransport.Posix>
  private let task: Task<Void, any Error>

  /// Returns once the socket listens.
  static func serve(_ path: String, services: [any RegistrableRPCService]) async throws -> ServedSocket {
    let transport = HTTP2ServerTransport.Posix(address: .unixDomainSocket(path: path), transportSecurity: .plaintext)
    let server = GRPCServer(transport: transport, services: services)
    let served = ServedSocket(server: server, task: Task { try await server.serve() })
    _ = try await transport.listeningAddress
    return served
  }

  func stop() async {
    await server.stop(serving: task, deadline: .milliseconds(200))
  }
}
