import Foundation
public import CRIAPI
import GRPCCore

/// The container runtime's CRI `RuntimeService` on a real unix socket, listing the pod
/// sandboxes its owner says exist, and filtering them the way containerd does (id, state,
/// every label in `label_selector`).
public final class RuntimeServiceEmulator: @unchecked Sendable {
  private let lock = NSLock()
  private var sandboxes: [Runtime_V1_PodSandbox] = []
  private var failure: RPCError?
  private var calls = 0
  private var served: ServedSocket?
  public let socketPath: String

  public init(socketPath: String) {
    self.socketPath = socketPath
  }

  /// A sandbox as the kubelet's RunPodSandbox makes it: labelled with the pod's namespace,
  /// name and uid, created now (nanoseconds), ready.
  @discardableResult
  public func addSandbox(id: String, namespace: String, pod: String, uid: String = UUID().uuidString, handler: String = "kata-fc", attempt: UInt32 = 0) -> Runtime_V1_PodSandbox {
    let sandbox = Runtime_V1_PodSandbox.with {
      $0.id = id
      $0.metadata = .with {
        $0.name = pod
        $0.namespace = namespace
        $0.uid = uid
        $0.attempt = attempt
      }
      $0.state = .sandboxReady
      $0.createdAt = Int64(Date().timeIntervalSince1970 * 1e9)
      $0.labels = ["io.kubernetes.pod.namespace": namespace, "io.kubernetes.pod.name": pod, "io.kubernetes.pod.uid": uid]
      $0.runtimeHandler = handler
    }
    lock.withLock { sandboxes.append(sandbox) }
    return sandbox
  }

  /// StopPodSandbox: the sandbox stays listed, NOTREADY.
  public func stopSandbox(id: String) {
    lock.withLock {
      for index in sandboxes.indices where sandboxes[index].id == id { sandboxes[index].state = .sandboxNotready }
    }
  }

  /// RemovePodSandbox.
  public func removeSandbox(id: String) {
    lock.withLock { sandboxes.removeAll { $0.id == id } }
  }

  /// Every call fails with `error` until cleared with nil (a runtime restarting).
  public func fail(with error: RPCError?) {
    lock.withLock { failure = error }
  }

  /// ListPodSandbox calls answered so far.
  public var listCalls: Int { lock.withLock { calls } }

  public func start() async throws {
    served = try await ServedSocket.serve(socketPath, services: [Service(owner: self)])
  }

  public func stop() async {
    await served?.stop()
  }

  fileprivate func list(_ filter: Runtime_V1_PodSandboxFilter?) throws -> [Runtime_V1_PodSandbox] {
    try lock.withLock {
      calls += 1
      if let failure { throw failure }
      guard let filter else { return sandboxes }
      return sandboxes.filter { sandbox in
        (filter.id.isEmpty || sandbox.id == filter.id)
          && (!filter.hasState || sandbox.state == filter.state.state)
          && filter.labelSelector.allSatisfy { sandbox.labels[$0.key] == $0.value }
      }
    }
  }

  private struct Service: Runtime_V1_RuntimeService.SimpleServiceProtocol {
    let owner: RuntimeServiceEmulator

    func listPodSandbox(request: Runtime_V1_ListPodSandboxRequest, context: ServerContext) async throws
      -> Runtime_V1_ListPodSandboxResponse
    {
      let items = try owner.list(request.hasFilter ? request.filter : nil)
      return .with { $0.items = items }
    }
  }
}
