import CRIAPI
import Glibc
import GRPCCore
import GRPCUnixClient
import NodeSupport

/// Asks the container runtime's CRI socket (containerd, k3s's containerd, CRI-O: the first of
/// `criSockets` that exists) for pod sandboxes, and finds a sandbox's hybrid-vsock socket from
/// path templates in which `{id}` stands for the sandbox id.
public struct CRISandboxLocator: SandboxLocating {
  public let criSockets: [String]
  public let vmSockets: [String]
  /// Bounds one ListPodSandbox call.
  public let timeout: Duration

  public static let idPlaceholder = "{id}"

  public init(criSockets: [String], vmSockets: [String], timeout: Duration = .seconds(5)) {
    self.criSockets = criSockets
    self.vmSockets = vmSockets
    self.timeout = timeout
  }

  public var runtimeDescription: String {
    criSockets.first(where: Self.isSocket) ?? criSockets.joined(separator: " or ")
  }

  public func readySandboxes(namespace: String?, pod: String?) async throws(CRIError) -> [PodSandboxInfo] {
    guard let socket = criSockets.first(where: Self.isSocket) else { throw .noRuntime(tried: criSockets) }
    var request = Runtime_V1_ListPodSandboxRequest()
    request.filter.state.state = .sandboxReady
    if let namespace { request.filter.labelSelector[KubeletSandboxLabels.namespace] = namespace }
    if let pod { request.filter.labelSelector[KubeletSandboxLabels.name] = pod }
    let response: Runtime_V1_ListPodSandboxResponse
    do {
      let transport = UnixClientTransport(path: socket, authority: "localhost")
      response = try await withGRPCClient(transport: transport) { client in
        var options = CallOptions.defaults
        options.timeout = timeout
        options.waitForReady = false
        return try await Runtime_V1_RuntimeService.Client(wrapping: client).listPodSandbox(request, options: options)
      }
    } catch let error as RPCError {
      throw .call(socket: socket, reason: "\(error.code): \(error.message)")
    } catch {
      throw .call(socket: socket, reason: "\(error)")
    }
    // A runtime that ignores the filter (or a READY sandbox of another pod) must not match.
    return response.items.compactMap { item in
      guard item.state == .sandboxReady else { return nil }
      let info = PodSandboxInfo(
        id: item.id, namespace: item.labels[KubeletSandboxLabels.namespace] ?? item.metadata.namespace,
        pod: item.labels[KubeletSandboxLabels.name] ?? item.metadata.name,
        uid: item.labels[KubeletSandboxLabels.uid] ?? item.metadata.uid, createdAt: item.createdAt,
        runtimeHandler: item.runtimeHandler)
      if let namespace, info.namespace != namespace { return nil }
      if let pod, info.pod != pod { return nil }
      return info
    }
  }

  public func vmSocket(of id: String) -> VMSocketLookup {
    // An id with a slash could point a template anywhere on the node.
    guard !id.isEmpty, !id.utf8.contains(UInt8(ascii: "/")), id != ".", id != ".." else { return .missing(tried: []) }
    let candidates = vmSockets.map { $0.replacingEvery(Self.idPlaceholder, with: id) }
    if let found = candidates.first(where: Self.isSocket) { return .found(found) }
    return .missing(tried: candidates)
  }

  /// Whether `path` (followed if a link) is a unix socket now.
  public static func isSocket(_ path: String) -> Bool {
    var info = stat()
    return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFSOCK
  }
}
