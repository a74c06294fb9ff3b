public import GRPCNIOTransportCore
public import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Accepts HTTP/2 connections on a unix socket for a grpc-swift server, with a `PingResponder`
/// in front of each connection's HTTP/2 handler (see `PingResponder` for why).
///
/// This uses the transport's public `ListenerFactory` extension point, so everything past the
/// accept (HTTP/2 settings, gRPC framing, keepalive, graceful shutdown) stays grpc-swift's own.
public struct UnixSocketListener: HTTP2ServerTransport.ListenerFactory {
  public let path: String
  /// Permission bits set on the socket file after bind; nil keeps the umask's.
  public let mode: mode_t?
  /// Group id given to the socket file after bind; nil keeps the process's.
  public let group: gid_t?
  public let eventLoopGroup: any EventLoopGroup
  private let onPing: @Sendable () -> Void

  public init(
    path: String,
    mode: mode_t? = nil,
    group: gid_t? = nil,
    eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
    onPing: @escaping @Sendable () -> Void = {}
  ) {
    self.path = path
    self.mode = mode
    self.group = group
    self.eventLoopGroup = eventLoopGroup
    self.onPing = onPing
  }

  public func makeListeningChannel(
    listenerConfigurator: HTTP2ServerTransport.ListenerConfigurator,
    connectionConfigurator: HTTP2ServerTransport.ConnectionConfigurator
  ) async throws -> NIOAsyncChannel<HTTP2ServerTransport.ConnectionConfigurator.ConnectionChannel, Never> {
    try UnixSocketPath.prepareForBind(self.path)
    let onPing = self.onPing
    let channel = try await ServerBootstrap(group: self.eventLoopGroup)
      .serverChannelInitializer { channel in
        listenerConfigurator.configure(channel: channel)
      }
      .bind(unixDomainSocketPath: self.path) { child in
        child.eventLoop.makeCompletedFuture {
          try child.pipeline.syncOperations.addHandler(PingResponder(onPing: onPing))
        }.flatMap {
          connectionConfigurator.configure(channel: child, tls: .none)
        }
      }
    // Group before mode: a socket is never open to a group it was not meant for.
    if let group = self.group, chown(self.path, uid_t.max, group) != 0 {
      let code = errno
      try? await channel.channel.close()
      throw UnixSocketPathError.system(path: self.path, operation: "chown", errno: code)
    }
    if let mode = self.mode, chmod(self.path, mode) != 0 {
      let code = errno
      try? await channel.channel.close()
      throw UnixSocketPathError.system(path: self.path, operation: "chmod", errno: code)
    }
    return channel
  }
}

extension HTTP2ServerTransport.Custom where ListenerFactory == UnixSocketListener {
  /// A gRPC server transport listening on the unix socket at `path`.
  public static func unixSocket(
    path: String,
    mode: mode_t? = nil,
    group: gid_t? = nil,
    config: Config = .defaults,
    onPing: @escaping @Sendable () -> Void = {}
  ) -> HTTP2ServerTransport.Custom<UnixSocketListener> {
    HTTP2ServerTransport.Custom(
      listenerFactory: UnixSocketListener(path: path, mode: mode, group: group, onPing: onPing),
      config: config
    )
  }
}
