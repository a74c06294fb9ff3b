import NIOCore
import NIOEmbedded
import Testing

@testable import GRPCUnixServer

@Suite("PingResponder answers PINGs and passes everything else through")
struct PingResponderTests {
  static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

  static func frame(type: UInt8, flags: UInt8 = 0, stream: UInt32 = 0, payload: [UInt8]) -> [UInt8] {
    let length = payload.count
    return [UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF), type, flags]
      + withUnsafeBytes(of: stream.bigEndian, Array.init) + payload
  }

  static let settings = frame(type: 0x4, payload: [0, 3, 0, 0, 0, 100])
  static let headers = frame(type: 0x1, flags: 0x4, stream: 1, payload: Array(repeating: 0x82, count: 20))
  static let data = frame(type: 0x0, stream: 1, payload: Array(repeating: 7, count: 300))
  static let ping = frame(type: 0x6, payload: [1, 2, 3, 4, 5, 6, 7, 8])
  static let pingAck = frame(type: 0x6, flags: 0x1, payload: [1, 2, 3, 4, 5, 6, 7, 8])

  /// Feeds `chunks` and returns (bytes passed on, bytes written back).
  func run(_ chunks: [[UInt8]]) throws -> (passed: [UInt8], written: [UInt8]) {
    let channel = EmbeddedChannel(handler: PingResponder())
    try channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    var passed: [UInt8] = []
    var written: [UInt8] = []
    for chunk in chunks {
      try channel.writeInbound(ByteBuffer(bytes: chunk))
      while var buffer = try channel.readInbound(as: ByteBuffer.self) {
        passed += buffer.readBytes(length: buffer.readableBytes) ?? []
      }
      while var buffer = try channel.readOutbound(as: ByteBuffer.self) {
        written += buffer.readBytes(length: buffer.readableBytes) ?? []
      }
    }
    _ = try channel.finish()
    return (passed, written)
  }

  @Test func passesFramesWithoutPingsUnchanged() throws {
    let stream = Self.preface + Self.settings + Self.headers + Self.data
    let (passed, written) = try run([stream])
    #expect(passed == stream)
    #expect(written.isEmpty)
  }

  @Test func answersAndRemovesPings() throws {
    let (passed, written) = try run([Self.preface + Self.settings + Self.ping + Self.data + Self.ping])
    #expect(passed == Self.preface + Self.settings + Self.data)
    #expect(written == Self.pingAck + Self.pingAck)
  }

  @Test func handlesFramesSplitAtEveryByte() throws {
    let stream = Self.preface + Self.settings + Self.ping + Self.headers + Self.ping + Self.data
    let (passed, written) = try run(stream.map { [$0] })
    #expect(passed == Self.preface + Self.settings + Self.headers + Self.data)
    #expect(written == Self.pingAck + Self.pingAck)
  }

  @Test func leavesPingAcksAndMalformedPingsToHTTP2() throws {
    let oddPing = Self.frame(type: 0x6, stream: 3, payload: [1, 2, 3, 4, 5, 6, 7, 8])
    let stream = Self.preface + Self.pingAck + oddPing
    let (passed, written) = try run([stream])
    #expect(passed == stream)
    #expect(written.isEmpty)
  }
}
