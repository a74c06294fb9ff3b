import GRPCCore
import GRPCUnixClient
public import KubeletAPI

/// Calls the kubelet's `Registration.Register`. A protocol so the registration loop can be
/// driven by a double; the production implementation speaks gRPC over the kubelet's socket.
public protocol KubeletRegistering: Sendable {
  func register(_ request: V1beta1_RegisterRequest, socketPath: String) async throws
}

public struct GRPCKubeletRegistrar: KubeletRegistering {
  /// The kubelet dials us back and calls `GetDevicePluginOptions` inside Register, so allow
  /// for that round trip, but do not wait forever for a kubelet that is starting up.
  public var timeout: Duration

  public init(timeout: Duration = .seconds(10)) {
    self.timeout = timeout
  }

  public func register(_ request: V1beta1_RegisterRequest, socketPath: String) async throws {
    let transport = UnixClientTransport(path: socketPath, authority: "localhost")
    try await withGRPCClient(transport: transport) { client in
      let registration = V1beta1_Registration.Client(wrapping: client)
      var options = CallOptions.defaults
      options.timeout = timeout
      options.waitForReady = false
      _ = try await registration.register(request, options: options)
    }
  }
}

extension V1beta1_RegisterRequest {
  public static let supportedVersion = "v1beta1"

  /// The request for `resource`, with the options set as current kubelets read them from
  /// `GetDevicePluginOptions` and older ones from here.
  public static func forResource(name: String, endpoint: String) -> Self {
    .with {
      $0.version = supportedVersion
      $0.endpoint = endpoint
      $0.resourceName = name
      $0.options = DevicePluginService.options
    }
  }
}
