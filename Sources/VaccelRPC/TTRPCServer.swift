#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
public import NIOCore
import NIOPosix
public import VaccelAgentAPI

/// A small ttrpc server: every request frame is answered by `handler`, in order, per connection.
public enum TTRPCServer {
  public typealias Handler = @Sendable (Ttrpc_Request) async -> Ttrpc_Response
  public typealias Listener = NIOAsyncChannel<NIOAsyncChannel<TTRPCFrame, TTRPCFrame>, Never>

  /// Binds `address` (the socket exists once this returns).
  public static func bind(
    _ address: AgentAddress, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
  ) async throws -> Listener {
    let bootstrap = ServerBootstrap(group: group)
    let initializer: @Sendable (any Channel) -> EventLoopFuture<NIOAsyncChannel<TTRPCFrame, TTRPCFrame>> = {
      TTRPCPipeline.configure($0)
    }
    switch address {
    case .unix(let path):
      return try await bootstrap.bind(unixDomainSocketPath: path, childChannelInitializer: initializer)
    case .tcp(let host, let port):
      return try await bootstrap.serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .bind(host: host, port: port, childChannelInitializer: initializer)
    case .vsock:
      return try await bootstrap.bind(to: address.vsockAddress!, childChannelInitializer: initializer)
    case .abstractUnix:
      throw TTRPCError.unsupportedAddress(address.description)
    }
  }

  /// Serves connections until the listener closes or the task is cancelled.
  public static func serve(_ listener: Listener, handler: @escaping Handler) async throws {
    try await listener.executeThenClose { connections in
      try await withThrowingDiscardingTaskGroup { group in
        for try await connection in connections {
          group.addTask {
            try? await connection.executeThenClose { inbound, outbound in
              for try await frame in inbound where frame.kind == .request {
                let request = try Ttrpc_Request(serializedBytes: Array(buffer: frame.payload))
                let response = await handler(request)
                let bytes: [UInt8] = try response.serializedBytes()
                try await outbound.write(
                  TTRPCFrame(streamID: frame.streamID, kind: .response, payload: ByteBuffer(bytes: bytes)))
              }
            }
          }
        }
      }
    }
  }

  public static func reply(_ payload: [UInt8]) -> Ttrpc_Response {
    .with { $0.payload = Data(payload) }
  }

  public static func failure(_ code: Int32, _ message: String) -> Ttrpc_Response {
    .with {
      $0.status = .with {
        $0.code = code
        $0.message = message
      }
    }
  }
}
