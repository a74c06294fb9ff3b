public import VaccelConfig

/// Where the agent behind one slot listens, and what a container is given to reach it.
public struct SlotEndpoint: Sendable, Equatable {
  /// The slot's own host folder (unix transport): holds the agent socket, mounted into the pod.
  public var hostDirectory: String?
  /// The address as the pod dials it (`VACCEL_RPC_ADDRESS`).
  public var podAddress: String

  public static let socketName = "vaccel.sock"
  public static let clientPlugin = "libvaccel-rpc.so"
  /// CID of the host as seen from inside a VM guest.
  public static let hostCID = 2

  public init(resource: ResourceConfig, runDir: String, slot index: Int) {
    let id = resource.deviceID(slot: index)
    switch resource.transport {
    case .unix:
      hostDirectory = runDir.joiningPath(resource.slug).joiningPath(id)
      podAddress = "unix://" + resource.containerPath.joiningPath(Self.socketName)
    case .vsock:
      hostDirectory = nil
      podAddress = "vsock://\(Self.hostCID):\(resource.basePort + index)"
    case .tcp:
      hostDirectory = nil
      podAddress = "tcp://\(resource.nodeIP ?? ""):\(resource.basePort + index)"
    }
  }
}

extension ContainerAllocation {
  /// For `agents: runtime`: the sandbox runtime starts the agent; the container only learns
  /// which slot it holds.
  static func runtimeManaged(resource: ResourceConfig, slots: [Int]) -> ContainerAllocation {
    ContainerAllocation(annotations: [
      "vaccel.org/resource": resource.name,
      "vaccel.org/slots": slots.map { resource.deviceID(slot: $0) }.joined(separator: ","),
    ])
  }

  /// The reply for one container holding `slots` (in request order) of `resource`.
  ///
  /// The first slot is the container's agent (`VACCEL_RPC_ADDRESS`, folder at `containerPath`);
  /// further slots, when `maxPerContainer` allows them, are mounted at `containerPath-1`, … and
  /// listed in `VACCEL_RPC_ADDRESSES`. Only the slots' own folders are mounted, never their parent.
  init(resource: ResourceConfig, runDir: String, slots: [Int]) {
    var addresses: [String] = []
    var mounts: [MountSpec] = []
    for (position, index) in slots.enumerated() {
      var endpoint = SlotEndpoint(resource: resource, runDir: runDir, slot: index)
      if let host = endpoint.hostDirectory {
        let containerPath = position == 0 ? resource.containerPath : "\(resource.containerPath)-\(position)"
        endpoint.podAddress = "unix://" + containerPath.joiningPath(SlotEndpoint.socketName)
        mounts.append(MountSpec(containerPath: containerPath, hostPath: host))
      }
      addresses.append(endpoint.podAddress)
    }
    var envs = [
      "VACCEL_PLUGINS": SlotEndpoint.clientPlugin,
      "VACCEL_RPC_ADDRESS": addresses[0],
    ]
    if addresses.count > 1 {
      envs["VACCEL_RPC_ADDRESSES"] = addresses.joined(separator: ",")
    }
    self.init(
      envs: envs,
      mounts: mounts,
      annotations: [
        "vaccel.org/resource": resource.name,
        "vaccel.org/slots": slots.map { resource.deviceID(slot: $0) }.joined(separator: ","),
        "vaccel.org/endpoint": addresses[0],
      ]
    )
  }
}
