public import VaccelConfig
public import VaccelRPC

/// Where one slot's agent listens: computed here and nowhere else, from the resource, the slot
/// and, for the unix transport, the allocation (see `EndpointLayout`). vsock and tcp agents
/// listen on the slot's own port, the same for every holder.
public struct SlotAddressing: Sendable, Equatable {
  public let slotID: String
  public let index: Int
  /// unix: the slot's folder and the root it lives under (`runDir`; nothing below it may be a
  /// symlink). nil for vsock and tcp.
  public let slotFolder: String?
  public let root: String?
  private let fixed: AgentEndpoint?

  public init(resource: ResourceConfig, runDir: String, slot index: Int) {
    self.slotID = resource.deviceID(slot: index)
    self.index = index
    let port = resource.basePort + index
    switch resource.transport {
    case .unix:
      slotFolder = EndpointLayout.slotFolder(runDir: runDir, resource: resource, slot: index)
      root = runDir
      fixed = nil
    case .vsock:
      slotFolder = nil
      root = nil
      // The probe dials the loopback CID: the agent listens on any CID.
      fixed = AgentEndpoint(
        allocation: "", folder: nil, socketPath: nil,
        listen: .vsock(cid: resource.agent.vsockListenCID, port: UInt32(port)),
        probe: .vsock(cid: 1, port: UInt32(port)))  // VMADDR_CID_LOCAL
    case .tcp:
      slotFolder = nil
      root = nil
      let address = AgentAddress.tcp(host: resource.nodeIP ?? "127.0.0.1", port: port)
      fixed = AgentEndpoint(allocation: "", folder: nil, socketPath: nil, listen: address, probe: address)
    }
  }

  /// Whether every holder gets a place of its own (unix), or all share the slot's port.
  public var perAllocation: Bool { slotFolder != nil }

  /// The endpoint of `allocation` (ignored for vsock and tcp).
  public func endpoint(allocation: String) -> AgentEndpoint {
    if let fixed { return fixed }
    let folder = EndpointLayout.allocationFolder(slotFolder: slotFolder!, allocation: allocation)
    let socket = folder.joiningPath(EndpointLayout.socketName)
    return AgentEndpoint(
      allocation: allocation, folder: folder, socketPath: socket, listen: .unix(path: socket), probe: .unix(path: socket))
  }

  /// The allocation an agent's listen address (as on its command line) belongs to, if it is
  /// one of this slot's: how agents a previous daemon left behind are found.
  public func allocation(ofListenAddress text: String) -> String? {
    if let fixed { return text == fixed.listen.description ? "" : nil }
    guard let slotFolder, case .unix(let path)? = try? AgentAddress(parsing: text) else { return nil }
    return EndpointLayout.allocation(ofSocket: path, slotFolder: slotFolder)
  }
}

/// One agent's place: where it listens and, for the unix transport, the allocation's folder.
public struct AgentEndpoint: Sendable, Equatable {
  /// The allocation's name ("" for vsock and tcp, and for the old one-folder-per-slot layout).
  public var allocation: String
  /// unix: the folder mounted into the holder's containers, and the socket in it.
  public var folder: String?
  public var socketPath: String?
  /// Where the agent listens (`-a`).
  public var listen: AgentAddress
  /// Where the probe connects (the same, or the loopback form of a wildcard listen address).
  public var probe: AgentAddress
}
