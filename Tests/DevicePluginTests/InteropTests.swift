import DevicePlugin
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Testing
import VaccelConfig

/// The daemon against gRPC implementations that share no code with it: Python grpcio playing
/// the whole kubelet, and grpc-go (the kubelet's own library) hammering one connection.
/// The tools come from scripts/install-test-deps (Debian golang-go, golang-google-grpc-dev,
/// protoc-gen-go-1-3, protobuf-compiler; PyPI grpcio, grpcio-tools).
@Suite("Interop with independent gRPC implementations")
struct InteropTests {
  @Test(arguments: ["localhost", "path"])
  func pythonKubeletAcceptsTheDaemonAndGetsItBackAfterARestart(authority: String) async throws {
    let python = try #require(Repository.which("python3"), "python3 is needed: run scripts/install-test-deps")
    let directory = try TestDirectory()
    let config = DaemonHarness.config(in: directory)
    let daemon = try NodeDaemon(config: config, logger: .test, podResources: FakePodResources())
    let (status, output, error) = try await withRunningDaemon(daemon) {
      try await ChildProcess.run(python, [
        Repository.interop + "/python_kubelet.py", "--dir", config.kubelet.devicePluginDir,
        "--protos", Repository.protos, "--authority", authority, "--devices", "8", "--restarts", "2",
      ])
    }
    #expect(status == 0, "python kubelet: \(error)\(output)")
    let seen = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any]
    #expect(seen?["registrations"] as? Int == 3)
    #expect(seen?["resource"] as? String == "vaccel.org/accel")
    #expect((seen?["envs"] as? [String: String])?["VACCEL_RPC_ADDRESS"] == "unix:///var/run/vaccel/vaccel.sock")
  }

  @Test func grpcGoClientKeepsItsStreamThroughThousandsOfCalls() async throws {
    let client = try await GoKubeletClient.build()
    let directory = try TestDirectory()
    // This test is about HTTP/2 under grpc-go; agents would turn 500 Allocates into 500
    // agent recycles, so the sandbox runtime "starts" them here.
    let config = DaemonHarness.config(in: directory, resources: [ResourceConfig(agents: .runtime)])
    let daemon = try NodeDaemon(config: config, logger: .test, podResources: FakePodResources())
    let socket = config.kubelet.devicePluginDir + "/" + config.resources[0].endpointFileName
    let manager = daemon.managers[0]
    let result = try await withRunningDaemon(daemon) {
      try await waitForFile(socket)
      return try await client.run(socket: socket, calls: 2000) {
        try? await manager.setHealth(deviceID: "accel-1", healthy: false, reason: "interop")
      }
    }
    #expect(result.status == 0, "grpc-go client: \(result.error) \(result.json)")
    #expect(result.json["calls"] as? Int == 2000)
    #expect(result.json["failures"] as? Int == 0, "\(result.json["firstFailure"] ?? "")")
    #expect(result.json["streamAlive"] as? Bool == true, "\(result.json["streamError"] ?? "")")
    #expect(result.json["streamError"] == nil)
  }

  /// The control: the stock grpc-swift-nio-transport server fails the same client, which is
  /// why the daemon uses its own listener (README, "Why our own listener").
  @Test func stockTransportDropsTheSameGrpcGoClient() async throws {
    let client = try await GoKubeletClient.build()
    let directory = try TestDirectory()
    let socket = directory.sub("stock.sock")
    let manager = DeviceManager(resource: ResourceConfig(), logger: .test)
    let transport = HTTP2ServerTransport.Posix(address: .unixDomainSocket(path: socket), transportSecurity: .plaintext)
    let server = GRPCServer(transport: transport, services: [DevicePluginService(manager: manager)])
    let serving = Task { try await server.serve() }
    defer { serving.cancel() }
    _ = try await transport.listeningAddress

    let result = try await client.run(socket: socket, calls: 2000) {
      try? await manager.setHealth(deviceID: "accel-1", healthy: false, reason: "interop")
    }
    // swift-nio-http2 answers grpc-go's BDP PINGs with GOAWAY(ENHANCE_YOUR_CALM) after ~200:
    // the open ListAndWatch dies with "the connection is draining".
    #expect(result.status != 0)
    #expect(result.json["streamAlive"] as? Bool == false, "the stock transport unexpectedly survived: \(result.json)")
    #expect((result.json["streamError"] as? String ?? "").contains("draining"), "\(result.json)")
  }
}

/// The grpc-go client in Interop/go, built in GOPATH mode against Debian's grpc-go.
struct GoKubeletClient {
  /// Its GOPATH, removed with the client.
  let folder: TestDirectory
  var binary: String { folder.sub("kubeletclient") }

  static func build() async throws -> GoKubeletClient {
    let go = try #require(Repository.which("go"), "go is needed: run scripts/install-test-deps")
    let protoc = try #require(Repository.which("protoc"), "protoc is needed: run scripts/install-test-deps")
    let folder = try TestDirectory()
    let gopath = folder.path
    try FileManager.default.createDirectory(atPath: gopath + "/src/kubeletclient", withIntermediateDirectories: true)
    let generated = try await ChildProcess.run(protoc, [
      "--proto_path=\(Repository.protos)", "--go_out=plugins=grpc:\(gopath)/src", "deviceplugin/v1beta1/api.proto",
    ])
    try #require(generated.status == 0, "protoc --go_out (protoc-gen-go-1-3): \(generated.error)")
    try FileManager.default.copyItem(
      atPath: Repository.interop + "/go/kubeletclient/main.go", toPath: gopath + "/src/kubeletclient/main.go")
    let built = try await ChildProcess.run(
      go, ["build", "-o", folder.sub("kubeletclient"), "kubeletclient"],
      environment: ["GO111MODULE": "off", "GOPATH": "\(gopath):/usr/share/gocode", "GOFLAGS": ""])
    try #require(built.status == 0, "go build: \(built.error)")
    return GoKubeletClient(folder: folder)
  }

  /// Runs the client; `afterCalls` runs when it reports its calls done, to make the plugin
  /// send one more device list on the stream it holds.
  func run(socket: String, calls: Int, afterCalls: @escaping @Sendable () async -> Void) async throws
    -> (status: Int32, json: [String: Any], error: String)
  {
    let child = try ChildProcess(binary, ["-socket", socket, "-calls", "\(calls)"])
    var last = ""
    for await line in child.lines {
      if line == "calls-done" { await afterCalls() }
      last = line
    }
    let status = await child.wait()
    let json = (try? JSONSerialization.jsonObject(with: Data(last.utf8))) as? [String: Any] ?? [:]
    return (status, json, child.standardError)
  }
}
