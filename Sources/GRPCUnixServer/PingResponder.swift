import NIOCore

/// Answers the client's HTTP/2 PING frames before swift-nio-http2 sees them.
///
/// Why this exists: grpc-go (the kubelet's gRPC library) sends a flow-control (BDP) PING for
/// nearly every response it receives. swift-nio-http2 counts every inbound PING against a
/// control-frame limit of 200 per 30 s and then closes the connection with
/// `GOAWAY(ENHANCE_YOUR_CALM)`, which ends `ListAndWatch` and makes the kubelet mark every
/// device unhealthy. grpc-swift-nio-transport 2.9.2 offers no setting for that limit, so this
/// handler sits in front of the HTTP/2 handler, reads the raw frame stream and acknowledges
/// PINGs itself; all other bytes pass through untouched.
///
/// DoS protection is kept where it matters: while the channel is not writable (a peer that
/// sends PINGs but does not read the ACKs), PINGs are passed on and swift-nio-http2's own
/// limits and buffering caps apply again. Our sockets are local and root-only.
final class PingResponder: ChannelInboundHandler, RemovableChannelHandler {
  typealias InboundIn = ByteBuffer
  typealias InboundOut = ByteBuffer
  typealias OutboundOut = ByteBuffer

  private enum Frame {
    static let headerLength = 9
    static let pingPayloadLength = 8
    static let pingType: UInt8 = 0x6
    static let ackFlag: UInt8 = 0x1
  }

  /// The client connection preface ("PRI * HTTP/2.0…"), which precedes the first frame.
  private var prefaceRemaining = 24
  /// Bytes of the current (non-PING) frame's payload still to pass through.
  private var payloadRemaining = 0
  /// An incomplete frame header or PING frame carried over to the next read.
  private var carried: ByteBuffer?
  private var unflushedAcks = false
  private let onPing: @Sendable () -> Void

  init(onPing: @escaping @Sendable () -> Void = {}) {
    self.onPing = onPing
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    var input = self.unwrapInboundIn(data)
    if var carried = self.carried.take() {
      carried.writeBuffer(&input)
      input = carried
    }

    // `getSlice` only returns readable bytes, so slices to pass on are cut from this unmoved copy.
    let received = input
    var passFrom = input.readerIndex
    scan: while input.readableBytes > 0 {
      if self.prefaceRemaining > 0 || self.payloadRemaining > 0 {
        let skip = min(max(self.prefaceRemaining, self.payloadRemaining), input.readableBytes)
        input.moveReaderIndex(forwardBy: skip)
        if self.prefaceRemaining > 0 { self.prefaceRemaining -= skip } else { self.payloadRemaining -= skip }
        continue
      }

      // At a frame boundary: length (24 bits), type, flags, stream id (31 bits).
      guard input.readableBytes >= Frame.headerLength else { break scan }
      let start = input.readerIndex
      let length = Int(input.getInteger(at: start, as: UInt16.self)!) << 8
        | Int(input.getInteger(at: start + 2, as: UInt8.self)!)
      let type = input.getInteger(at: start + 3, as: UInt8.self)!
      let flags = input.getInteger(at: start + 4, as: UInt8.self)!
      let streamID = input.getInteger(at: start + 5, as: UInt32.self)! & 0x7FFF_FFFF

      let isPingRequest = type == Frame.pingType && flags & Frame.ackFlag == 0
        && length == Frame.pingPayloadLength && streamID == 0
      guard isPingRequest, context.channel.isWritable else {
        input.moveReaderIndex(forwardBy: Frame.headerLength)
        self.payloadRemaining = length
        continue
      }
      guard input.readableBytes >= Frame.headerLength + Frame.pingPayloadLength else { break scan }

      self.forward(received, from: passFrom, to: start, context: context)
      let opaque = input.getSlice(at: start + Frame.headerLength, length: Frame.pingPayloadLength)!
      input.moveReaderIndex(forwardBy: Frame.headerLength + Frame.pingPayloadLength)
      passFrom = input.readerIndex
      self.writeAck(opaque, context: context)
    }

    self.forward(received, from: passFrom, to: input.readerIndex, context: context)
    if input.readableBytes > 0 {
      self.carried = input.slice()
    }
  }

  func channelReadComplete(context: ChannelHandlerContext) {
    if self.unflushedAcks {
      self.unflushedAcks = false
      context.flush()
    }
    context.fireChannelReadComplete()
  }

  private func forward(_ buffer: ByteBuffer, from: Int, to: Int, context: ChannelHandlerContext) {
    guard to > from, let slice = buffer.getSlice(at: from, length: to - from) else { return }
    context.fireChannelRead(self.wrapInboundOut(slice))
  }

  private func writeAck(_ opaque: ByteBuffer, context: ChannelHandlerContext) {
    var ack = context.channel.allocator.buffer(capacity: Frame.headerLength + Frame.pingPayloadLength)
    ack.writeInteger(UInt16(0))
    ack.writeInteger(UInt8(Frame.pingPayloadLength))
    ack.writeInteger(Frame.pingType)
    ack.writeInteger(Frame.ackFlag)
    ack.writeInteger(UInt32(0))
    ack.writeImmutableBuffer(opaque)
    context.write(self.wrapOutboundOut(ack), promise: nil)
    self.unflushedAcks = true
    self.onPing()
  }
}
