import DevicePlugin
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import GRPCUnixServer
import KubeletAPI
import Testing

@Suite("gRPC over our unix-socket listener")
struct UnixSocketListenerTests {
  @Test func servesUnaryCalls() async throws {
    let directory = try TestDirectory()
    let path = directory.sub("p.sock")
    let manager = DeviceManager(resource: .init(), logger: .test)
    let transport = HTTP2ServerTransport.Custom.unixSocket(path: path)
    let server = GRPCServer(transport: transport, services: [DevicePluginService(manager: manager)])
    try await withThrowingDiscardingTaskGroup { group in
      group.addTask { try await server.serve() }
      _ = await transport.listeningAddress
      let client = try HTTP2ClientTransport.Posix(
        target: .unixDomainSocket(path: path, authority: "localhost"), transportSecurity: .plaintext)
      try await withGRPCClient(transport: client) { client in
        let plugin = V1beta1_DevicePlugin.Client(wrapping: client)
        let options = try await plugin.getDevicePluginOptions(V1beta1_Empty())
        #expect(options.preStartRequired)
      }
      server.beginGracefulShutdown()
    }
  }
}
