public import NIOCore

/// One ttrpc frame: a 10-byte header (payload length u32 BE, stream id u32 BE, type u8,
/// flags u8) and the payload.
public struct TTRPCFrame: Sendable, Equatable {
  public enum Kind: UInt8, Sendable {
    case request = 1
    case response = 2
    case data = 3
  }

  public static let headerLength = 10
  /// ttrpc's default message limit.
  public static let maxPayload = 4 << 20

  public var streamID: UInt32
  public var type: UInt8
  public var flags: UInt8
  public var payload: ByteBuffer

  public init(streamID: UInt32, kind: Kind, flags: UInt8 = 0, payload: ByteBuffer) {
    self.streamID = streamID
    self.type = kind.rawValue
    self.flags = flags
    self.payload = payload
  }

  public var kind: Kind? { Kind(rawValue: type) }
}

public struct TTRPCFrameTooLarge: Error, CustomStringConvertible {
  public var length: Int
  public var description: String { "ttrpc frame of \(length) bytes exceeds \(TTRPCFrame.maxPayload)" }
}

public struct TTRPCFrameDecoder: ByteToMessageDecoder {
  public typealias InboundOut = TTRPCFrame

  public init() {}

  public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
    guard buffer.readableBytes >= TTRPCFrame.headerLength,
      let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self)
    else { return .needMoreData }
    guard length <= TTRPCFrame.maxPayload else { throw TTRPCFrameTooLarge(length: Int(length)) }
    guard buffer.readableBytes >= TTRPCFrame.headerLength + Int(length) else { return .needMoreData }
    buffer.moveReaderIndex(forwardBy: 4)
    let streamID = buffer.readInteger(as: UInt32.self)!
    let type = buffer.readInteger(as: UInt8.self)!
    let flags = buffer.readInteger(as: UInt8.self)!
    let payload = buffer.readSlice(length: Int(length))!
    var frame = TTRPCFrame(streamID: streamID, kind: .data, flags: flags, payload: payload)
    frame.type = type
    context.fireChannelRead(self.wrapInboundOut(frame))
    return .continue
  }
}

public struct TTRPCFrameEncoder: MessageToByteEncoder {
  public typealias OutboundIn = TTRPCFrame

  public init() {}

  public func encode(data: TTRPCFrame, out: inout ByteBuffer) throws {
    out.writeInteger(UInt32(data.payload.readableBytes))
    out.writeInteger(data.streamID)
    out.writeInteger(data.type)
    out.writeInteger(data.flags)
    out.writeImmutableBuffer(data.payload)
  }
}
