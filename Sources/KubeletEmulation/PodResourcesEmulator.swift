import Foundation
public import GRPCCore
import GRPCUnixServer
import KubeletAPI

/// A container as pod-resources names it.
public struct PodContainer: Sendable, Hashable {
  public var namespace: String
  public var pod: String
  public var container: String

  public init(namespace: String, pod: String, container: String) {
    self.namespace = namespace
    self.pod = pod
    self.container = container
  }
}

/// The kubelet's pod-resources API on a real unix socket, listing what its owner says.
public final class PodResourcesEmulator: @unchecked Sendable {
  private let lock = NSLock()
  private var held: [(resource: String, id: String, holder: PodContainer)] = []
  private var failure: RPCError?
  private var served: ServedSocket?
  public let socketPath: String

  public init(socketPath: String) {
    self.socketPath = socketPath
  }

  /// Replaces what every resource's devices are held by.
  public func set(_ resource: String, _ devices: [String: PodContainer]) {
    lock.withLock {
      held = devices.map { (resource, $0.key, $0.value) }
    }
  }

  /// Every `List` fails with `error` until cleared with nil (the kubelet rate-limits with
  /// RESOURCE_EXHAUSTED, and is UNAVAILABLE while it restarts).
  public func fail(with error: RPCError?) {
    lock.withLock { failure = error }
  }

  /// Replaces one resource's holders, keeping the others'.
  public func update(_ resource: String, _ devices: [String: PodContainer]) {
    lock.withLock {
      held = held.filter { $0.resource != resource } + devices.map { (resource, $0.key, $0.value) }
    }
  }

  public func start() async throws {
    served = try await ServedSocket.serve(socketPath, services: [Service(owner: self)])
  }

  public func stop() async {
    await served?.stop()
  }

  fileprivate var currentFailure: RPCError? { lock.withLock { failure } }

  fileprivate var response: V1_ListPodResourcesResponse {
    let held = lock.withLock { self.held }
    let byPod = Dictionary(grouping: held) { "\($0.holder.namespace)/\($0.holder.pod)" }
    return .with {
      $0.podResources = byPod.keys.sorted().map { key in
        let entries = byPod[key]!
        let holder = entries[0].holder
        let byContainer = Dictionary(grouping: entries) { $0.holder.container }
        return .with {
          $0.namespace = holder.namespace
          $0.name = holder.pod
          $0.containers = byContainer.keys.sorted().map { container in
            let mine = byContainer[container]!
            let byResource = Dictionary(grouping: mine) { $0.resource }
            return .with {
              $0.name = container
              $0.devices = byResource.keys.sorted().map { resource in
                .with {
                  $0.resourceName = resource
                  $0.deviceIds = byResource[resource]!.map(\.id).sorted()
                }
              }
            }
          }
        }
      }
    }
  }

  private struct Service: V1_PodResourcesLister.SimpleServiceProtocol {
    let owner: PodResourcesEmulator

    func list(request: V1_ListPodResourcesRequest, context: ServerContext) async throws -> V1_ListPodResourcesResponse {
      if let failure = owner.currentFailure { throw failure }
      return owner.response
    }

    func getAllocatableResources(request: V1_AllocatableResourcesRequest, context: ServerContext) async throws
      -> V1_AllocatableResourcesResponse
    {
      throw RPCError(code: .unimplemented, message: "not in this fake")
    }

    func get(request: V1_GetPodResourcesRequest, context: ServerContext) async throws -> V1_GetPodResourcesResponse {
      throw RPCError(code: .unimplemented, message: "feature gate off")
    }
  }
}
