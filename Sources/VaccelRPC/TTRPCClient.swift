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
public import SwiftProtobuf
import VaccelAgentAPI

/// A failed ttrpc call: the transport failed, or the agent answered with a non-OK status.
public enum TTRPCError: Error, Equatable, CustomStringConvertible {
  case status(code: Int32, message: String)
  case connectionClosed
  case timedOut(Duration)
  case unsupportedAddress(String)
  case malformedResponse(String)

  public var description: String {
    switch self {
    case .status(let code, let message): "the agent answered status \(code): \(message)"
    case .connectionClosed: "the agent closed the connection"
    case .timedOut(let after): "no answer within \(after)"
    case .unsupportedAddress(let address): "cannot connect to \(address)"
    case .malformedResponse(let why): "malformed ttrpc response: \(why)"
    }
  }
}

/// One ttrpc connection to an agent; calls are made one after another.
public final class TTRPCConnection {
  private var inbound: NIOAsyncChannelInboundStream<TTRPCFrame>.AsyncIterator
  private let outbound: NIOAsyncChannelOutboundWriter<TTRPCFrame>
  private var nextStreamID: UInt32 = 1

  init(inbound: NIOAsyncChannelInboundStream<TTRPCFrame>, outbound: NIOAsyncChannelOutboundWriter<TTRPCFrame>) {
    self.inbound = inbound.makeAsyncIterator()
    self.outbound = outbound
  }

  /// Calls `service/method` and decodes the reply payload as `Reply`.
  public func call<Reply: SwiftProtobuf.Message>(
    service: String, method: String, request: some SwiftProtobuf.Message, as: Reply.Type = Reply.self
  ) async throws -> Reply {
    let streamID = nextStreamID
    nextStreamID += 2  // client streams are odd
    let envelope = Ttrpc_Request.with {
      $0.service = service
      $0.method = method
      $0.payload = (try? request.serializedData()) ?? Data()
    }
    let bytes: [UInt8] = try envelope.serializedBytes()
    try await outbound.write(TTRPCFrame(streamID: streamID, kind: .request, payload: ByteBuffer(bytes: bytes)))
    while let frame = try await inbound.next() {
      guard frame.streamID == streamID, frame.kind == .response else { continue }
      let response = try Ttrpc_Response(serializedBytes: Array(buffer: frame.payload))
      guard response.status.code == TTRPCCode.ok else {
        throw TTRPCError.status(code: response.status.code, message: response.status.message)
      }
      return try Reply(serializedBytes: response.payload)
    }
    throw TTRPCError.connectionClosed
  }
}

public enum TTRPCClient {
  /// Connects to `address`, runs `body`, closes; the whole exchange is bounded by `timeout`.
  public static func withConnection<Result: Sendable>(
    to address: AgentAddress,
    timeout: Duration,
    group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
    _ body: @escaping @Sendable (TTRPCConnection) async throws -> Result
  ) async throws -> Result {
    try await withThrowingTaskGroup(of: Result.self) { tasks in
      tasks.addTask {
        let channel = try await connect(to: address, timeout: timeout, group: group)
        return try await channel.executeThenClose { inbound, outbound in
          try await body(TTRPCConnection(inbound: inbound, outbound: outbound))
        }
      }
      tasks.addTask {
        try await Task.sleep(for: timeout)
        throw TTRPCError.timedOut(timeout)
      }
      defer { tasks.cancelAll() }
      return try await tasks.next()!
    }
  }

  static func connect(to address: AgentAddress, timeout: Duration, group: any EventLoopGroup) async throws
    -> NIOAsyncChannel<TTRPCFrame, TTRPCFrame>
  {
    let bootstrap = ClientBootstrap(group: group)
      .connectTimeout(.nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000
        + timeout.components.attoseconds / 1_000_000_000))
    let initializer: @Sendable (any Channel) -> EventLoopFuture<NIOAsyncChannel<TTRPCFrame, TTRPCFrame>> = {
      TTRPCPipeline.configure($0)
    }
    switch address {
    case .unix(let path):
      return try await bootstrap.connect(unixDomainSocketPath: path, channelInitializer: initializer)
    case .tcp(let host, let port):
      return try await bootstrap.connect(host: host, port: port, channelInitializer: initializer)
    case .vsock:
      return try await bootstrap.connect(to: address.vsockAddress!, channelInitializer: initializer)
    case .abstractUnix:
      throw TTRPCError.unsupportedAddress(address.description)
    }
  }
}

extension AgentAddress {
  /// NIO's form of a vsock address (CID -1, "any", is VMADDR_CID_ANY's bit pattern).
  var vsockAddress: VsockAddress? {
    guard case .vsock(let cid, let port) = self else { return nil }
    return VsockAddress(cid: .init(rawValue: UInt32(truncatingIfNeeded: cid)), port: .init(rawValue: port))
  }
}

enum TTRPCPipeline {
  static func configure(_ channel: any Channel) -> EventLoopFuture<NIOAsyncChannel<TTRPCFrame, TTRPCFrame>> {
    channel.eventLoop.makeCompletedFuture {
      try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(TTRPCFrameDecoder()))
      try channel.pipeline.syncOperations.addHandler(MessageToByteHandler(TTRPCFrameEncoder()))
      return try NIOAsyncChannel<TTRPCFrame, TTRPCFrame>(wrappingChannelSynchronously: channel)
    }
  }
}
