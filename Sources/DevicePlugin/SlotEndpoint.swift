import VaccelConfig
import VaccelAgents

/// What a container is given to reach the agent of one slot it holds.
public enum SlotEndpoint {
  public static let clientPlugin = "libvaccel-rpc.so"
  /// CID of the host as seen from inside a VM guest.
  public static let hostCID = 2

  /// The address the pod dials (`VACCEL_RPC_ADDRESS`) for slot `index`; for the unix
  /// transport, inside the folder mounted at `containerPath`.
  static func podAddress(resource: ResourceConfig, slot index: Int, containerPath: String) -> String {
    switch resource.transport {
    case .unix: "unix://" + containerPath.joiningPath(EndpointLayout.socketName)
    case .hybridVsock: "vsock://\(hostCID):\(resource.basePort)"
    case .vsock: "vsock://\(hostCID):\(resource.basePort + index)"
    case .tcp: "tcp://\(resource.nodeIP ?? ""):\(resource.basePort + index)"
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

  /// The reply for one container holding `slots` (in request order) of `resource`, whose
  /// agents were handed out at `endpoints`.
  ///
  /// The first slot is the container's agent (`VACCEL_RPC_ADDRESS`, folder at `containerPath`);
  /// further slots, when `maxPerContainer` allows them, are mounted at `containerPath-1`, … and
  /// listed in `VACCEL_RPC_ADDRESSES`. Only the allocations' own folders are mounted, never a
  /// parent: what the next holder of a slot gets is out of this container's reach.
  init(resource: ResourceConfig, slots: [Int], endpoints: [Int: AgentEndpoint]) {
    var addresses: [String] = []
    var mounts: [MountSpec] = []
    for (position, index) in slots.enumerated() {
      let containerPath = position == 0 ? resource.containerPath : "\(resource.containerPath)-\(position)"
      if let host = endpoints[index]?.folder {
        mounts.append(MountSpec(containerPath: containerPath, hostPath: host))
      }
      addresses.append(SlotEndpoint.podAddress(resource: resource, slot: index, containerPath: containerPath))
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
