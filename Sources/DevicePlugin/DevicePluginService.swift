public import GRPCCore
public import KubeletAPI

/// The `v1beta1.DevicePlugin` service for one resource: translates between the kubelet's
/// messages and `DeviceManager`, and maps `PluginError` to gRPC status codes.
public struct DevicePluginService: V1beta1_DevicePlugin.SimpleServiceProtocol {
  public let manager: DeviceManager

  public init(manager: DeviceManager) {
    self.manager = manager
  }

  /// Sent in `GetDevicePluginOptions` and, for older kubelets, in `RegisterRequest.options`.
  public static let options = V1beta1_DevicePluginOptions.with {
    $0.preStartRequired = true
    $0.getPreferredAllocationAvailable = true
  }

  public func getDevicePluginOptions(
    request: V1beta1_Empty, context: ServerContext
  ) async throws -> V1beta1_DevicePluginOptions {
    Self.options
  }

  public func listAndWatch(
    request: V1beta1_Empty,
    response: RPCWriter<V1beta1_ListAndWatchResponse>,
    context: ServerContext
  ) async throws {
    let watch = await manager.watch()
    // The handler is not cancelled as a task when the kubelet goes away: end the subscription
    // from the RPC's cancellation handle so the loop below finishes.
    try await withRPCCancellationHandler {
      for await devices in watch.updates {
        try await response.write(.with { $0.devices = devices.map(Self.proto) })
      }
    } onCancelRPC: {
      watch.cancel()
    }
  }

  public func getPreferredAllocation(
    request: V1beta1_PreferredAllocationRequest, context: ServerContext
  ) async throws -> V1beta1_PreferredAllocationResponse {
    let requests = request.containerRequests.map {
      PreferenceRequest(
        available: $0.availableDeviceIds, mustInclude: $0.mustIncludeDeviceIds, size: Int($0.allocationSize))
    }
    let answers = try await mapped { () throws(PluginError) in try await manager.preferred(requests) }
    return .with {
      $0.containerResponses = answers.map { ids in .with { $0.deviceIds = ids } }
    }
  }

  public func allocate(
    request: V1beta1_AllocateRequest, context: ServerContext
  ) async throws -> V1beta1_AllocateResponse {
    let requests = request.containerRequests.map(\.devicesIds)
    let start = ContinuousClock.now
    do {
      let replies = try await mapped { () throws(PluginError) in try await manager.allocate(requests) }
      manager.metrics?.allocation(resource: manager.resource.name, duration: .now - start, error: nil)
      return .with { $0.containerResponses = replies.map(Self.proto) }
    } catch {
      manager.metrics?.allocation(resource: manager.resource.name, duration: .now - start, error: "\(error.code)")
      throw error
    }
  }

  public func preStartContainer(
    request: V1beta1_PreStartContainerRequest, context: ServerContext
  ) async throws -> V1beta1_PreStartContainerResponse {
    try await mapped { () throws(PluginError) in try await manager.preStart(request.devicesIds) }
    return V1beta1_PreStartContainerResponse()
  }

  private func mapped<T>(_ body: () async throws(PluginError) -> T) async throws(RPCError) -> T {
    do {
      return try await body()
    } catch {
      throw error.rpcError
    }
  }

  static func proto(_ device: DeviceStatus) -> V1beta1_Device {
    .with {
      $0.id = device.id
      $0.health = device.healthy ? "Healthy" : "Unhealthy"
    }
  }

  static func proto(_ allocation: ContainerAllocation) -> V1beta1_ContainerAllocateResponse {
    .with {
      $0.envs = allocation.envs
      $0.annotations = allocation.annotations
      $0.mounts = allocation.mounts.map { mount in
        .with {
          $0.containerPath = mount.containerPath
          $0.hostPath = mount.hostPath
          $0.readOnly = mount.readOnly
        }
      }
    }
  }
}
