import DevicePlugin
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import KubeletAPI
import Testing

/// Clients that are not a well-behaved kubelet: oversize messages, calls before any
/// registration, and a thousand streams at once. Each gets a gRPC answer; the daemon keeps
/// serving the real kubelet.
@Suite("Hostile gRPC clients")
struct HostileGRPCTests {
  static func withPlugin<T: Sendable>(
    _ harness: DaemonHarness, _ body: @Sendable (V1beta1_DevicePlugin.Client<HTTP2ClientTransport.Posix>) async throws -> T
  ) async throws -> T {
    let transport = try HTTP2ClientTransport.Posix(
      target: .unixDomainSocket(path: harness.socketPath, authority: "localhost"), transportSecurity: .plaintext)
    return try await withGRPCClient(transport: transport) { client in
      try await body(V1beta1_DevicePlugin.Client(wrapping: client))
    }
  }

  @Test func anOversizeMessageIsRefusedAndNothingChanges() async throws {
    try await DaemonHarness.using(try await DaemonHarness.start()) { harness in
      try await harness.registered()
      let error = await #expect(throws: RPCError.self) {
        try await Self.withPlugin(harness) { plugin in
          var options = CallOptions.defaults
          options.maxRequestMessageBytes = 16 << 20
          _ = try await plugin.allocate(
            .with { $0.containerRequests = [.with { $0.devicesIds = [String(repeating: "x", count: 5 << 20)] }] }, options: options)
        }
      }
      // grpc-swift resets the stream once the message passes the server's 4 MiB limit; the
      // client reports that as UNAVAILABLE (RST_STREAM), or RESOURCE_EXHAUSTED when it is told.
      #expect([.resourceExhausted, .unavailable].contains(error?.code), "\(String(describing: error))")
      #expect(!FileManager.default.fileExists(atPath: harness.config.runDir + "/accel"))
      let reply = try await harness.kubelet.admit(harness.resource, [["accel-0"]])
      #expect(reply.containerResponses.count == 1)
    }
  }

  @Test func callsBeforeAnyRegistrationAreAnswered() async throws {
    try await DaemonHarness.using(try await DaemonHarness.start(kubeletFirst: false)) { harness in
      let registration = try #require(harness.daemon.plugins.first?.registration)
      #expect(await registration.wait(timeout: .seconds(20)) { $0.state == .waitingForKubelet } != nil)
      let devices = try await Self.withPlugin(harness) { plugin in
        let options = try await plugin.getDevicePluginOptions(V1beta1_Empty())
        #expect(options.preStartRequired && options.getPreferredAllocationAvailable)
        return try await plugin.listAndWatch(V1beta1_Empty()) { response in
          for try await message in response.messages { return message.devices.count }
          return 0
        }
      }
      #expect(devices == 8)
      // Allocate from an unregistered caller is still validated the same way.
      let error = await #expect(throws: RPCError.self) {
        try await Self.withPlugin(harness) { plugin in
          _ = try await plugin.allocate(.with { $0.containerRequests = [.with { $0.devicesIds = ["../x"] }] })
        }
      }
      #expect(error?.code == .invalidArgument)
    }
  }

  @Test func aThousandStreamsAtOnceLeaveTheKubeletsStreamWorking() async throws {
    try await DaemonHarness.using(try await DaemonHarness.start()) { harness in
      try await harness.registered()
      let received = try await withThrowingTaskGroup(of: Int.self) { group in
        for _ in 0..<10 {
          group.addTask {
            try await Self.withPlugin(harness) { plugin in
              try await withThrowingTaskGroup(of: Int.self) { streams in
                for _ in 0..<100 {
                  streams.addTask {
                    try await plugin.listAndWatch(V1beta1_Empty()) { response in
                      for try await message in response.messages { return message.devices.count }
                      return 0
                    }
                  }
                }
                var total = 0
                for try await count in streams { total += count }
                return total
              }
            }
          }
        }
        var total = 0
        for try await count in group { total += count }
        return total
      }
      #expect(received == 1000 * 8, "every stream got the full device list")
      // The kubelet's own stream still gets changes, and Allocate still works.
      let before = await harness.kubelet.state.plugins[harness.resource]?.updates ?? 0
      try await harness.manager.setHealth(deviceID: "accel-2", healthy: false, reason: "test")
      _ = try await harness.kubelet.wait(for: "the update") { ($0.plugins[harness.resource]?.updates ?? 0) > before }
      #expect(try await harness.kubelet.admit(harness.resource, [["accel-0"]]).containerResponses.count == 1)
    }
  }
}
