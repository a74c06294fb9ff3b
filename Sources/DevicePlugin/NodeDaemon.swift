#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
public import Logging
public import NodeSupport
public import ServiceLifecycle
public import VaccelAgents
public import VaccelConfig
public import VaccelMetrics
public import CRIClient
import GRPCCore
import UnixSignals

/// The node daemon: per resource a `DeviceManager` (slots), an `AgentPool` (agents) and a
/// `ResourcePlugin` (kubelet registration); plus the pod-resources poller and the checkpoint
/// writer. All run as services in a `ServiceGroup` that shuts down gracefully on SIGTERM/SIGINT.
public struct NodeDaemon: Sendable {
  public let config: DaemonConfig
  public let plugins: [ResourcePlugin]
  public let managers: [DeviceManager]
  public let monitor: ProcessMonitor
  public let checkpoint: CheckpointWriter
  public let podResources: PodResourcesWatcher
  public let metrics: DaemonMetrics
  /// nil when `metricsAddress` is empty.
  public let metricsListener: MetricsListener?
  /// nil when `status.socket` is empty.
  public let statusServer: StatusServer?
  private let logger: Logger

  /// `reapOrphans`: become a child subreaper and reap every child (the daemon process only;
  /// tests that run the daemon in-process leave it off so their own children are theirs).
  public init(
    config: DaemonConfig,
    logger: Logger,
    registrar: any KubeletRegistering = GRPCKubeletRegistrar(),
    watcher: any DirectoryWatching = InotifyWatcher(),
    podResources: (any PodResourcesListing)? = nil,
    sandboxLocator: (any SandboxLocating)? = nil,
    launcher: (any ProcessLaunching)? = nil,
    reapOrphans: Bool = false,
    searchPath: String? = ProcessInfo.processInfo.environment["PATH"],
    vaccelRunFolder: String? = VaccelRunFolder.defaultPath,
    metrics: DaemonMetrics = DaemonMetrics(version: BuildInfo.version)
  ) throws {
    self.config = config
    self.logger = logger
    self.metrics = metrics
    metrics.declareResources(config.resources.map(\.name))
    self.metricsListener = MetricsListener(address: config.metricsAddress, metrics: metrics, logger: logger)
    let monitor = try ProcessMonitor(reapOrphans: reapOrphans, logger: logger)
    self.monitor = monitor
    let launcher = try launcher
      ?? (config.agentHostSocket.isEmpty
        ? PosixLauncher(monitor: monitor) : HostedLauncher(socket: config.agentHostSocket, logger: logger))
    let podResourcesClient = podResources ?? GRPCPodResourcesClient(socketPath: config.kubelet.podResourcesSocket)
    let sandboxJoin = config.usesSandboxes
      ? SandboxJoin(
        locator: sandboxLocator ?? CRISandboxLocator(criSockets: config.sandboxes.criSockets, vmSockets: config.sandboxes.vmSockets),
        podResources: podResourcesClient, lookupTimeout: config.sandboxes.lookupTimeout)
      : nil
    let managers = config.resources.map { resource in
      DeviceManager(
        resource: resource,
        agents: resource.agents == .managed
          ? AgentPool(
            resource: resource, runDir: config.runDir, stateDir: config.stateDir, launcher: launcher,
            searchPath: searchPath, vaccelRunFolder: vaccelRunFolder, logger: logger,
            onEvent: { event in
              switch event {
              case .started: metrics.agentStarted(resource: resource.name)
              case .ready(let after): metrics.agentReady(resource: resource.name, after: after)
              case .exited(let status, let restarting):
                let reason = switch status {
                case .exited: "exited"
                case .signaled: "signaled"
                case .unknown: "unknown"
                case nil: "not_ready"
                }
                metrics.agentExited(resource: resource.name, reason: reason, restarting: restarting)
              case .unresponsive:
                metrics.agentExited(resource: resource.name, reason: "unresponsive", restarting: true)
              }
            })
          : nil,
        metrics: metrics,
        sandboxes: sandboxJoin,
        logger: logger)
    }
    self.managers = managers
    self.plugins = managers.map { manager in
      ResourcePlugin(manager: manager, kubelet: config.kubelet, registrar: registrar, watcher: watcher, logger: logger)
    }
    let plugins = self.plugins
    self.statusServer = config.statusSocket.isEmpty
      ? nil
      : StatusServer(
        path: config.statusSocket, config: config.status,
        service: StatusService(
          config: config, plugins: plugins, startedAt: Date(),
          nodeName: ProcessInfo.processInfo.environment["NODE_NAME"] ?? ProcessInfo.processInfo.hostName),
        logger: logger)
    self.checkpoint = CheckpointWriter(
      store: CheckpointStore(stateDir: config.stateDir), managers: managers, logger: logger, metrics: metrics)
    self.podResources = PodResourcesWatcher(
      client: podResourcesClient,
      managers: managers, kubelet: config.kubelet, logger: logger,
      onPoll: { result in
        switch result {
        case .success: metrics.podResourcesPoll(result: "ok")
        case .failure(let error as RPCError) where error.code == .resourceExhausted:
          metrics.podResourcesPoll(result: "rate_limited")
        case .failure: metrics.podResourcesPoll(result: "error")
        }
      })
  }

  /// The folders the daemon works in; the kubelet's may not exist yet on a fresh node.
  public func prepareDirectories() throws {
    try Directories.create(config.kubelet.devicePluginDir)
    try Directories.create(config.runDir)
    if !config.statusSocket.isEmpty {
      try Directories.create(Directories.parent(of: config.statusSocket))
    }
  }

  /// Makes this instance the node's only one: the state folder's lock, taken before recovery,
  /// the checkpoint, RuntimeClass publishing or any socket, so that a second instance (an
  /// operator's `kubectl exec … vaccel-device-plugin`, a surge during a rollout) fails at once
  /// and touches nothing of the first's.
  public func takeOwnership() throws -> OwnerLock {
    try Directories.create(config.stateDir, mode: 0o700)
    return try OwnerLock(folder: config.stateDir)
  }

  /// Runs until SIGTERM/SIGINT (or the task is cancelled), then stops registering, ends the
  /// `ListAndWatch` streams, removes our sockets and stops the agents.
  ///
  /// `stopRequests` (the executable's trapped signals) may arrive at any moment, start-up and
  /// recovery included: what was adopted or started by then is stopped, and `run` returns.
  public func run(
    gracefulShutdownSignals: [UnixSignal] = [.sigterm, .sigint], stopRequests: AsyncStream<Int32>? = nil,
    additionalServices: [any Service] = []
  ) async throws {
    let owner = try takeOwnership()
    defer { withExtendedLifetime(owner) {} }
    let stop = StopRequest()
    let listener = Task { [logger] in
      guard let stopRequests else { return }
      for await signal in stopRequests {
        logger.notice("stopping", metadata: ["signal": "\(signal == SIGTERM ? "SIGTERM" : signal == SIGINT ? "SIGINT" : "\(signal)")"])
        await stop.request()
      }
    }
    defer { listener.cancel() }

    try prepareDirectories()
    _ = RuntimeClassPublisher.publish(config: config, logger: logger)
    defer { monitor.shutdown() }
    // The node checks first: recovery starts held slots' agents, which needs the install known
    // (before, each held slot logged "the node cannot run agents" a moment before it could).
    for manager in managers { await manager.agents?.checkNode(topUp: false) }
    do {
      try await recover()
    } catch {
      throw PluginError.unavailable("cannot recover the node's agents: \(error)")
    }
    if await stop.requested {
      await stopAgents()
      logger.info("stopped")
      return
    }
    let writer = checkpoint
    for manager in managers {
      await manager.setOnChange { writer.markDirty() }
    }
    await checkpoint.writeNow()

    // Shut down in reverse order: registrations first, the checkpoint writer last.
    var services: [any Service] = [checkpoint] + additionalServices
    for manager in managers {
      if let agents = manager.agents {
        services.append(BackgroundService("AgentPool(\(manager.resource.name))") { await agents.run() })
        services.append(BackgroundService("Agents→\(manager.resource.name)") { await manager.followAgents() })
      }
    }
    services.append(podResources)
    if let metricsListener { services.append(metricsListener) }
    if let statusServer { services.append(statusServer) }
    services.append(contentsOf: plugins as [any Service])
    var configuration = ServiceGroupConfiguration(
      services: services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) },
      gracefulShutdownSignals: gracefulShutdownSignals,
      logger: logger)
    // A service stuck in its graceful shutdown is cancelled after this, so the daemon always
    // gets to stop its agents and exit within the DaemonSet's 30 s grace period.
    configuration.maximumGracefulShutdownDuration = Self.maximumGracefulShutdown
    let group = ServiceGroup(configuration: configuration)
    logger.info(
      "starting",
      metadata: [
        "resources": "\(config.resources.map(\.name))",
        "devicePluginDir": "\(config.kubelet.devicePluginDir)",
      ])
    await stop.attach(group)
    do {
      try await group.run()
    } catch {
      await stopAgents()
      throw error
    }
    await stopAgents()
    logger.info("stopped")
  }

  static let maximumGracefulShutdown: Duration = .seconds(15)

  private func stopAgents() async {
    for manager in managers {
      await manager.agents?.stopAll()
    }
    await checkpoint.writeNow()
  }

  /// Reads the checkpoint (a corrupt one is set aside and the state rebuilt from what runs
  /// and what pod-resources says) and takes over what the previous instance left.
  private func recover() async throws(LaunchError) {
    let store = checkpoint.store
    var saved: Checkpoint?
    do {
      saved = try store.load()
    } catch {
      let aside = store.setAside()
      logger.error("checkpoint unusable; rebuilding from running agents and pod-resources",
        metadata: ["error": "\(error)", "keptAs": "\(aside)"])
    }
    // Who holds what, if the kubelet answers: with a torn checkpoint it is all there is.
    let held = try? await podResources.client.list()
    for manager in managers {
      try await manager.recover(
        from: saved?.resources[manager.resource.name],
        podResources: held.map { $0[manager.resource.name] ?? [:] })
    }
  }
}

/// A long-running function as a service that ends on graceful shutdown.
struct BackgroundService: Service, CustomStringConvertible {
  let description: String
  let body: @Sendable () async -> Void

  init(_ name: String, body: @escaping @Sendable () async -> Void) {
    self.description = name
    self.body = body
  }

  func run() async {
    await cancelWhenGracefulShutdown { await body() }
  }
}
