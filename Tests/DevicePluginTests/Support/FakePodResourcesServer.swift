import DevicePlugin
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import KubeletAPI

/// The kubelet's pod-resources API on a real unix socket, listing what the test says.
final class FakePodResourcesServer: @unchecked Sendable {
  private let lock = NSLock()
  private var held: [(resource: String, id: String, holder: Holder)] = []
  private var task: Task<Void, any Error>?
  let socketPath: String

  init(socketPath: String) {
    self.socketPath = socketPath
  }

  func set(_ resource: String, _ devices: [String: Holder]) {
    lock.withLock {
      held = devices.map { (resource, $0.key, $0.value) }
    }
  }

  func start() async throws {
    let transport = HTTP2ServerTransport.Posix(address: .unixDomainSocket(path: socketPath), transportSecurity: .plaintext)
    let server = GRPCServer(transport: transport, services: [Service(owner: self)])
    task = Task { try await server.serve() }
    _ = try await transport.listeningAddress
  }

  func stop() async {
    task?.cancel()
    _ = await task?.result
  }

  fileprivate var response: V1_ListPodResourcesResponse {
    let held = lock.withLock { self.held }
    let byPod = Dictionary(grouping: held) { "\($0.holder.namespace)/\($0.holder.pod)" }
    return .with {
      $0.podResources = byPod.values.map { entries in
        let holder = entries[0].holder
        return .with {
          $0.namespace = holder.namespace
          $0.name = holder.pod
          $0.containers = [.with {
            $0.name = holder.container
            $0.devices = [.with {
              $0.resourceName = entries[0].resource
              $0.deviceIds = entries.map(\.id)
            }]
          }]
        }
      }
    }
  }

  private struct Service: V1_PodResourcesLister.SimpleServiceProtocol {
    let owner: FakePodResourcesServer

    func list(request: V1_ListPodResourcesRequest, context: ServerContext) async throws -> V1_ListPodResourcesResponse {
      owner.response
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
