public import NIOCore
import NIOHTTP1
import NIOPosix

/// Serves `/metrics` (Prometheus text format), `/healthz` (the process and its event loops
/// answer: this very handler runs on one) and `/readyz` (every resource registered and serving
/// ListAndWatch; 503 with what is missing otherwise).
public enum MetricsServer {
  /// Binds `host:port` (port 0: any free one) and returns the listening channel.
  public static func bind(
    host: String, port: Int, metrics: DaemonMetrics,
    group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
  ) async throws -> any Channel {
    try await ServerBootstrap(group: group)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          try channel.pipeline.syncOperations.configureHTTPServerPipeline()
          try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(metrics: metrics))
        }
      }
      .bind(host: host, port: port)
      .get()
  }

  /// `host:port`, `:port` (all interfaces) or empty (off).
  public static func parse(_ address: String) -> (host: String, port: Int)? {
    guard !address.isEmpty, let colon = address.lastIndex(of: ":"),
      let port = Int(address[address.index(after: colon)...]), (0...65535).contains(port)
    else { return nil }
    let host = String(address[..<colon])
    let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
    return (bare.isEmpty ? "0.0.0.0" : bare, port)
  }
}

/// One per connection, used on its event loop only.
final class MetricsHTTPHandler: ChannelInboundHandler {
  typealias InboundIn = HTTPServerRequestPart
  typealias OutboundOut = HTTPServerResponsePart

  let metrics: DaemonMetrics
  private var request: HTTPRequestHead?

  init(metrics: DaemonMetrics) {
    self.metrics = metrics
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    switch unwrapInboundIn(data) {
    case .head(let head):
      request = head
    case .body:
      break
    case .end:
      guard let head = request else { return }
      respond(to: head, context: context)
    }
  }

  private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
    let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
    let (status, contentType, body): (HTTPResponseStatus, String, [UInt8])
    switch (head.method, path) {
    case (.GET, "/metrics"):
      (status, contentType, body) = (.ok, "text/plain; version=0.0.4; charset=utf-8", metrics.exposition())
    case (.GET, "/healthz"):
      (status, contentType, body) = (.ok, "text/plain", Array("ok\n".utf8))
    case (.GET, "/readyz"):
      if let missing = metrics.notReady {
        (status, contentType, body) = (.serviceUnavailable, "text/plain", Array(("not ready\n" + missing.joined(separator: "\n") + "\n").utf8))
      } else {
        (status, contentType, body) = (.ok, "text/plain", Array("ready\n".utf8))
      }
    case (.GET, _):
      (status, contentType, body) = (.notFound, "text/plain", Array("try /metrics, /healthz or /readyz\n".utf8))
    default:
      (status, contentType, body) = (.methodNotAllowed, "text/plain", Array("GET only\n".utf8))
    }
    var headers = HTTPHeaders()
    headers.add(name: "Content-Type", value: contentType)
    headers.add(name: "Content-Length", value: "\(body.count)")
    if !head.isKeepAlive { headers.add(name: "Connection", value: "close") }
    context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
    context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
    let keepAlive = head.isKeepAlive
    let channel = context.channel
    context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
      if !keepAlive { channel.close(promise: nil) }
    }
  }
}
