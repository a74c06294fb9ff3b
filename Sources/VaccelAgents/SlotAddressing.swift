public import VaccelConfig
public import VaccelRPC

/// Where one slot's agent listens: computed here and nowhere else, from the resource, the slot
/// and, for the unix transport, the allocation (see `EndpointLayout`); for hybrid-vsock, the
/// holder's VM sandbox: its hybrid-vsock socket `<uds>` is the allocation, and the agent
/// listens on `<uds>_<port>`, where the VMM sends that VM's connections to host port `<port>`.
/// vsock and tcp agents listen on the slot's own port, the same for every holder.
public struct SlotAddressing: Sendable, Equatable {
  public let slotID: String
  public let index: Int
  /// unix: the root the slot's folder lives under (`runDir`; nothing below it may be a
  /// symlink). nil for the other transports.
  public let root: String?
  /// unix: the resource's folder name under `root` (nil for the other transports). The slot's
  /// folder is made from it when asked, not kept: a path of its own per slot cost 80 bytes each.
  private let slug: String?
  /// hybrid-vsock: the port the guest dials (`vsock://2:<port>`); nil for the other transports.
  public let hybridPort: UInt32?
  private let fixed: AgentEndpoint?

  public init(resource: ResourceConfig, runDir: String, slot index: Int) {
    self.slotID = resource.deviceID(slot: index)
    self.index = index
    let port = resource.basePort + index
    hybridPort = resource.transport == .hybridVsock ? UInt32(resource.basePort) : nil
    switch resource.transport {
    case .unix:
      root = runDir
      slug = resource.slug
      fixed = nil
    case .hybridVsock:
      root = nil
      slug = nil
      fixed = nil
    case .vsock:
      root = nil
      slug = nil
      // The probe dials the loopback CID: the agent listens on any CID.
      fixed = AgentEndpoint(
        allocation: "", folder: nil, socketPath: nil,
        listen: .vsock(cid: resource.agent.vsockListenCID, port: UInt32(port)),
        probe: .vsock(cid: 1, port: UInt32(port)))  // VMADDR_CID_LOCAL
    case .tcp:
      root = nil
      slug = nil
      let address = AgentAddress.tcp(host: resource.nodeIP ?? "127.0.0.1", port: port)
      fixed = AgentEndpoint(allocation: "", folder: nil, socketPath: nil, listen: address, probe: address)
    }
  }

  /// unix: the slot's folder, `EndpointLayout.slotFolder` (nil for the other transports).
  public var slotFolder: String? {
    guard let root, let slug else { return nil }
    return root.joiningPath(slug).joiningPath(slotID)
  }

  /// Whether every holder gets a place of its own (unix, hybrid-vsock), or all share the
  /// slot's port.
  public var perAllocation: Bool { fixed == nil }

  /// Whether the place comes from the holder's VM sandbox, known only once it runs: nobody
  /// makes one up (hybrid-vsock).
  public var followsSandbox: Bool { hybridPort != nil }

  /// The endpoint of `allocation` (ignored for vsock and tcp; the VM's socket for hybrid-vsock).
  public func endpoint(allocation: String) -> AgentEndpoint {
    if let fixed { return fixed }
    if let hybridPort {
      let socket = "\(allocation)_\(hybridPort)"
      return AgentEndpoint(allocation: allocation, folder: nil, socketPath: socket, listen: .unix(path: socket), probe: .unix(path: socket))
    }
    let folder = EndpointLayout.allocationFolder(slotFolder: slotFolder!, allocation: allocation)
    let socket = folder.joiningPath(EndpointLayout.socketName)
    return AgentEndpoint(
      allocation: allocation, folder: folder, socketPath: socket, listen: .unix(path: socket), probe: .unix(path: socket))
  }

  /// The allocation an agent's listen address (as on its command line) belongs to, if it is
  /// one of this slot's: how agents a previous daemon left behind are found.
  public func allocation(ofListenAddress text: String) -> String? {
    if let fixed { return text == fixed.listen.description ? "" : nil }
    if let hybridPort {
      // Any VM's socket: which slot it is, the agent's environment says (`slotMarker`).
      let suffix = "_\(hybridPort)"
      guard case .unix(let path)? = try? AgentAddress(parsing: text), path.hasSuffix(suffix), path.count > suffix.count else { return nil }
      return String(path.dropLast(suffix.count))
    }
    guard let slotFolder, case .unix(let path)? = try? AgentAddress(parsing: text) else { return nil }
    return EndpointLayout.allocation(ofSocket: path, slotFolder: slotFolder)
  }
}

extension SlotAddressing {
  /// The environment variable every agent gets with its slot's ID: how a restarted daemon tells
  /// whose an agent on a VM socket is (the socket's path names the VM, not the slot).
  public static let slotMarker = "VACCEL_DEVICE_PLUGIN_SLOT"
}

/// One agent's place: where it listens and, for the unix transport, the allocation's folder.
/// A class, never changed once made: every slot keeps one (two for vsock and tcp) in its
/// supervisor, where a value would take about 110 bytes each whether or not an agent runs.
public final class AgentEndpoint: Sendable, Equatable {
  /// The allocation's name ("" for vsock and tcp, and for the old one-folder-per-slot layout;
  /// the VM's hybrid-vsock socket for hybrid-vsock).
  public let allocation: String
  /// unix: the folder mounted into the holder's containers, and the socket in it.
  public let folder: String?
  public let socketPath: String?
  /// Where the agent listens (`-a`).
  public let listen: AgentAddress
  /// Where the probe connects (the same, or the loopback form of a wildcard listen address).
  public let probe: AgentAddress

  init(allocation: String, folder: String?, socketPath: String?, listen: AgentAddress, probe: AgentAddress) {
    self.allocation = allocation
    self.folder = folder
    self.socketPath = socketPath
    self.listen = listen
    self.probe = probe
  }

  public static func == (lhs: AgentEndpoint, rhs: AgentEndpoint) -> Bool {
    lhs.allocation == rhs.allocation && lhs.folder == rhs.folder && lhs.socketPath == rhs.socketPath
      && lhs.listen == rhs.listen && lhs.probe == rhs.probe
  }
}
