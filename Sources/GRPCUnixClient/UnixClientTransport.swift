// Derived from grpc-swift-nio-transport 2.9.2, Sources/GRPCNIOTransportHTTP2Posix/
// HTTP2ClientTransport+Posix.swift and NIOClientBootstrap+SocketAddress.swift
// (Copyright 2024, gRPC Authors; Apache License 2.0): its plaintext path, for unix sockets only.
//
// Why this exists: `HTTP2ClientTransport.Posix` lives in a target that depends on NIOSSL,
// swift-certificates and swift-crypto, so a daemon that uses it links two copies of BoringSSL
// and the X.509 stack. That code never runs over a unix socket, but its type metadata,
// relocated tables and conformance records cost the idle daemon 0.57 MiB resident (measured
// per module from the link map and /proc/<pid>/pagemap; BENCHMARKS.md). The transport's
// connection machinery (`GRPCChannel`, `HTTP2Connector`, the client pipeline) is in
// GRPCNIOTransportCore, which has no TLS dependency, but it is `package` API: this target is
// compiled with grpc-swift-nio-transport's package name (Package.swift) to reach it. Keep it
// in step with that file when the dependency moves.

public import GRPCCore
public import GRPCNIOTransportCore
public import NIOCore
public import NIOPosix

/// A plaintext HTTP/2 gRPC client transport to a unix socket: what
/// `HTTP2ClientTransport.Posix(target: .unixDomainSocket(...), transportSecurity: .plaintext)`
/// does, without linking TLS.
public struct UnixClientTransport: ClientTransport {
  public typealias Bytes = GRPCNIOTransportBytes

  private let channel: GRPCChannel

  /// - Parameters:
  ///   - path: the socket's path.
  ///   - authority: the `:authority` the server sees (default: the path, as upstream).
  ///   - backoff: between connection attempts.
  ///   - eventLoopGroup: the NIO group the connection runs on.
  public init(
    path: String,
    authority: String? = nil,
    backoff: HTTP2ClientTransport.Config.Backoff = .defaults,
    eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
  ) {
    let resolver = NameResolvers.UnixDomainSocket().resolver(for: .unixDomainSocket(path: path, authority: authority))
    let config = GRPCChannel.Config(
      http2: .defaults, backoff: backoff, resolverBackoff: backoff, connection: .defaults, compression: .defaults)
    self.channel = GRPCChannel(
      resolver: resolver,
      connector: Connector(eventLoopGroup: eventLoopGroup, config: config),
      config: config,
      defaultServiceConfig: ServiceConfig()
    )
  }

  public var retryThrottle: RetryThrottle? { channel.retryThrottle }

  public func connect() async throws { await channel.connect() }

  public func config(forMethod descriptor: MethodDescriptor) -> MethodConfig? {
    channel.config(forMethod: descriptor)
  }

  public func beginGracefulShutdown() { channel.beginGracefulShutdown() }

  public func withStream<T: Sendable>(
    descriptor: MethodDescriptor,
    options: CallOptions,
    _ closure: (RPCStream<Inbound, Outbound>, ClientContext) async throws -> T
  ) async throws -> T {
    try await channel.withStream(descriptor: descriptor, options: options, closure)
  }
}

extension UnixClientTransport {
  struct Connector: HTTP2Connector {
    let eventLoopGroup: any EventLoopGroup
    let config: GRPCChannel.Config

    func establishConnection(
      to address: GRPCNIOTransportCore.SocketAddress,
      sniServerHostname: String?
    ) async throws -> HTTP2Connection {
      guard let socket = address.unixDomainSocket else {
        throw RuntimeError(code: .transportError, message: "'\(address)' is not a unix socket address")
      }
      let config = self.config
      let (channel, multiplexer) = try await ClientBootstrap(group: eventLoopGroup).connect(
        to: try NIOCore.SocketAddress(unixDomainSocketPath: socket.path)
      ) { channel in
        channel.eventLoop.makeCompletedFuture {
          try channel.pipeline.syncOperations.configureGRPCClientPipeline(channel: channel, config: config)
        }
      }
      return HTTP2Connection(channel: channel, multiplexer: multiplexer, isPlaintext: true, onCreateHTTP2Stream: nil)
    }
  }
}
