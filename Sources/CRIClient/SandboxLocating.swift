/// A pod sandbox as the container runtime lists it.
public struct PodSandboxInfo: Sendable, Equatable {
  public var id: String
  public var namespace: String
  public var pod: String
  public var uid: String
  /// Nanoseconds since the epoch: of a pod's sandboxes, the newest is the one that runs.
  public var createdAt: Int64
  /// The RuntimeClass handler ("" for the runtime's default).
  public var runtimeHandler: String

  public init(id: String, namespace: String, pod: String, uid: String = "", createdAt: Int64 = 0, runtimeHandler: String = "") {
    self.id = id
    self.namespace = namespace
    self.pod = pod
    self.uid = uid
    self.createdAt = createdAt
    self.runtimeHandler = runtimeHandler
  }
}

/// Where a VM sandbox's hybrid-vsock socket is, or every path that was tried.
public enum VMSocketLookup: Sendable, Equatable {
  case found(String)
  case missing(tried: [String])
}

/// Pod → VM sandbox → hybrid-vsock socket: what the daemon asks before it starts a pod's
/// agent beside the pod's VM. The seam between the plugin and the container runtime.
public protocol SandboxLocating: Sendable {
  /// The sandboxes in state READY, only those of `namespace`/`pod` when given (filtered by
  /// the labels the kubelet puts on every sandbox).
  func readySandboxes(namespace: String?, pod: String?) async throws(CRIError) -> [PodSandboxInfo]
  /// Sandbox `id`'s hybrid-vsock socket: the first configured path that is a socket now.
  func vmSocket(of id: String) -> VMSocketLookup
  /// What is asked, for messages: the CRI socket (or the candidates).
  var runtimeDescription: String { get }
}

extension SandboxLocating {
  /// The sandbox `namespace`/`pod` runs in now: the newest ready one.
  public func currentSandbox(namespace: String, pod: String) async throws(CRIError) -> PodSandboxInfo? {
    try await readySandboxes(namespace: namespace, pod: pod).max { $0.createdAt < $1.createdAt }
  }
}

/// The labels the kubelet sets on every pod sandbox.
public enum KubeletSandboxLabels {
  public static let namespace = "io.kubernetes.pod.namespace"
  public static let name = "io.kubernetes.pod.name"
  public static let uid = "io.kubernetes.pod.uid"
}
