public import DaemonLogging
public import Logging

/// The daemon's whole configuration, as validated by `ConfigLoader`.
public struct DaemonConfig: Sendable, Equatable {
  public static let currentVersion = "v1"

  public var kubelet: KubeletConfig
  /// Per-slot endpoint folders live under `<runDir>/<slug>/<slot-id>/`.
  public var runDir: String
  public var stateDir: String
  public var logLevel: Logger.Level
  public var logFormat: LogFormat
  /// `host:port` of the /metrics, /healthz, /readyz listener; empty turns it off.
  public var metricsAddress: String
  /// The read-only status API that `vaccelctl status` reads.
  public var status: StatusConfig
  /// Where on a k3s server the daemon writes its RuntimeClasses for auto-deploy; empty: never.
  public var k3sAutoDeployDir: String
  /// Defaults for every resource's agents; a resource may override any field.
  public var agent: AgentConfig
  /// How VM sandboxes are found (transport `hybrid-vsock`).
  public var sandboxes: SandboxConfig
  /// The agent host's socket (`vaccel-device-plugin agent-host`): agents are started there and
  /// outlive this daemon. Empty: agents are this daemon's children and stop with it.
  public var agentHostSocket: String
  public var resources: [ResourceConfig]

  public init(
    kubelet: KubeletConfig = KubeletConfig(),
    runDir: String = "/var/run/vaccel",
    stateDir: String = "/var/lib/vaccel-device-plugin",
    logLevel: Logger.Level = .info,
    logFormat: LogFormat = .keyvalue,
    metricsAddress: String = "0.0.0.0:9464",
    status: StatusConfig = StatusConfig(),
    k3sAutoDeployDir: String = "",
    agent: AgentConfig = AgentConfig(),
    sandboxes: SandboxConfig = SandboxConfig(),
    agentHostSocket: String = "",
    resources: [ResourceConfig] = [ResourceConfig()]
  ) {
    self.kubelet = kubelet
    self.runDir = runDir
    self.stateDir = stateDir
    self.logLevel = logLevel
    self.logFormat = logFormat
    self.metricsAddress = metricsAddress
    self.status = status
    self.k3sAutoDeployDir = k3sAutoDeployDir
    self.agent = agent
    self.sandboxes = sandboxes
    self.agentHostSocket = agentHostSocket
    self.resources = resources
  }

  /// Whether any resource's agents live beside VM sandboxes (and so the CRI is asked).
  public var usesSandboxes: Bool {
    resources.contains { $0.transport == .hybridVsock && $0.agents == .managed }
  }
}

/// Who may connect to a slot's agent socket. Root only by default (mode 0660, root:root); a
/// uid/gid lets pods that run as that user or group connect, and nobody else.
public struct EndpointAccess: Sendable, Equatable {
  public var uid: UInt32?
  public var gid: UInt32?
  /// The socket's mode; the slot folder gets owner rwx and x for whoever the socket admits.
  public var mode: UInt32

  public init(uid: UInt32? = nil, gid: UInt32? = nil, mode: UInt32 = 0o660) {
    self.uid = uid
    self.gid = gid
    self.mode = mode
  }

  /// Traversable (not listable) for exactly the classes the socket admits.
  public var folderMode: UInt32 {
    0o700 | (mode & 0o060 != 0 ? 0o010 : 0) | (mode & 0o006 != 0 ? 0o001 : 0)
  }
}

/// The status socket: root-only by default; a group and mode open it to an operator group.
public struct StatusConfig: Sendable, Equatable {
  public static let socketName = "device-plugin.sock"
  /// nil: `<runDir>/device-plugin.sock` (`/var/run/vaccel/device-plugin.sock` by default);
  /// empty turns the status API off.
  public var socket: String?
  public var mode: UInt32
  /// Numeric group id given to the socket; nil keeps the daemon's.
  public var group: UInt32?

  public init(socket: String? = nil, mode: UInt32 = 0o600, group: UInt32? = nil) {
    self.socket = socket
    self.mode = mode
    self.group = group
  }
}

extension DaemonConfig {
  /// The port of `metricsAddress`; nil when the listener is off or the address has none.
  public var metricsPort: Int? {
    metricsAddress.isEmpty ? nil : metricsAddress.split(separator: ":").last.flatMap { Int($0) }
  }

  /// The status API's socket; empty when it is off.
  public var statusSocket: String { status.socket ?? runDir.joiningPath(StatusConfig.socketName) }
}

public struct KubeletConfig: Sendable, Equatable {
  /// Hard-coded in the kubelet, also on k3s; configurable for tests and odd setups.
  public var devicePluginDir: String
  public var podResourcesSocket: String
  /// How often the registration loop re-checks the sockets even without an inotify event:
  /// a safety net, not the primary signal.
  public var recheckInterval: Duration
  /// How often pod-resources `List` is asked which pod holds which slot.
  public var podResourcesInterval: Duration
  /// A slot allocated this recently counts as held even before pod-resources lists it (the
  /// kubelet records the allocation only after Allocate returns).
  public var allocationGrace: Duration

  public init(
    devicePluginDir: String = "/var/lib/kubelet/device-plugins",
    podResourcesSocket: String = "/var/lib/kubelet/pod-resources/kubelet.sock",
    recheckInterval: Duration = .seconds(5),
    podResourcesInterval: Duration = .seconds(5),
    allocationGrace: Duration = .seconds(30)
  ) {
    self.devicePluginDir = devicePluginDir
    self.podResourcesSocket = podResourcesSocket
    self.recheckInterval = recheckInterval
    self.podResourcesInterval = podResourcesInterval
    self.allocationGrace = allocationGrace
  }

  /// The kubelet's registration socket.
  public var registrationSocket: String { devicePluginDir.joiningPath("kubelet.sock") }
}

/// How a pod reaches the agent behind a slot.
public enum AgentTransport: String, Sendable, Equatable, CaseIterable {
  /// A unix socket in the slot's own folder, bind-mounted into the pod (plain containers).
  case unix
  /// VM sandboxes whose VMM speaks hybrid vsock (Firecracker, Cloud Hypervisor, Dragonball:
  /// Kata's `kata-fc`, `kata-clh`, `kata-dragonball`). The pod's agent listens on its own VM's
  /// socket, `<uds>_<port>`, so only that VM reaches it; the pod dials `vsock://2:<port>`.
  case hybridVsock = "hybrid-vsock"
  /// vsock towards the host (VM sandboxes such as Kata with QEMU). Any guest on the node can
  /// reach any port: no isolation between pods (README, "VM sandboxes").
  case vsock
  /// TCP on the node's address: unauthenticated, for setups that have nothing else.
  case tcp
}

/// Which free slots `GetPreferredAllocation` proposes first.
public enum AllocationPolicy: String, Sendable, Equatable, CaseIterable {
  /// The slot idle the longest first: wear and recycling spread over all slots.
  case spread
  /// The lowest free slot first: keeps the high slots idle.
  case pack
}

public struct ResourceConfig: Sendable, Equatable {
  /// The extended resource name, e.g. `vaccel.org/accel`.
  public var name: String
  /// Devices advertised: how many containers may hold one at once.
  public var slots: Int
  public var transport: AgentTransport
  /// Devices one container may request (the kubelet asks once per container).
  public var maxPerContainer: Int
  public var policy: AllocationPolicy
  /// Where a unix-transport slot folder is mounted inside the container.
  public var containerPath: String
  /// First port for vsock/tcp endpoints; slot `i` gets `basePort + i`. hybrid-vsock: the one
  /// port of every slot (each VM has its own socket, so the port need not differ).
  public var basePort: Int
  /// The node address handed out for tcp endpoints (`NODE_IP` when not set).
  public var nodeIP: String?
  public var agents: AgentManagement
  /// Free slots kept with a fresh, ready agent so that Allocate only hands one out.
  public var warm: Int
  /// This resource's agent settings (the global `agent:` with this resource's overrides).
  public var agent: AgentConfig
  /// Owner and mode of each slot's folder and agent socket (unix transport).
  public var endpoint = EndpointAccess()

  public init(
    name: String = "vaccel.org/accel",
    slots: Int = 8,
    transport: AgentTransport = .unix,
    maxPerContainer: Int = 1,
    policy: AllocationPolicy = .spread,
    containerPath: String = "/var/run/vaccel",
    basePort: Int = 2048,
    nodeIP: String? = nil,
    agents: AgentManagement = .managed,
    warm: Int = 0,
    agent: AgentConfig = AgentConfig()
  ) {
    self.name = name
    self.slots = slots
    self.transport = transport
    self.maxPerContainer = maxPerContainer
    self.policy = policy
    self.containerPath = containerPath
    self.basePort = basePort
    self.nodeIP = nodeIP
    self.agents = agents
    self.warm = warm
    self.agent = agent
  }

  /// The part after the `/`: names the plugin socket and prefixes device IDs.
  public var slug: String { ResourceName.slug(of: name) }

  /// The plugin socket's file name inside the device-plugins folder.
  public var endpointFileName: String { "vaccel-\(slug).sock" }

  /// Stable device IDs `<slug>-0` … `<slug>-N-1`.
  public func deviceID(slot index: Int) -> String { "\(slug)-\(index)" }
}

extension String {
  /// `self` joined with `component` by exactly one `/`.
  public func joiningPath(_ component: String) -> String {
    hasSuffix("/") ? self + component : self + "/" + component
  }
}
