public import NodeSupport
public import Logging
public import ServiceLifecycle
public import VaccelConfig
import UnixSignals

/// The node daemon: one `DeviceManager` and one `ResourcePlugin` per configured resource, run
/// as services in a `ServiceGroup` that shuts down gracefully on SIGTERM/SIGINT.
public struct NodeDaemon: Sendable {
  public let config: DaemonConfig
  public let plugins: [ResourcePlugin]
  private let logger: Logger

  public init(
    config: DaemonConfig,
    logger: Logger,
    registrar: any KubeletRegistering = GRPCKubeletRegistrar(),
    watcher: any DirectoryWatching = InotifyWatcher()
  ) {
    self.config = config
    self.logger = logger
    self.plugins = config.resources.map { resource in
      ResourcePlugin(
        manager: DeviceManager(resource: resource, runDir: config.runDir, logger: logger),
        kubelet: config.kubelet,
        registrar: registrar,
        watcher: watcher,
        logger: logger)
    }
  }

  public func manager(for resourceName: String) -> DeviceManager? {
    plugins.first { $0.manager.resource.name == resourceName }?.manager
  }

  /// The folders the daemon works in; the kubelet's may not exist yet on a fresh node.
  public func prepareDirectories() throws {
    for path in [config.kubelet.devicePluginDir, config.runDir, config.stateDir] {
      try Directories.create(path)
    }
  }

  /// Runs until SIGTERM/SIGINT (or the task is cancelled), then stops registering, ends the
  /// `ListAndWatch` streams and removes our sockets.
  public func run(gracefulShutdownSignals: [UnixSignal] = [.sigterm, .sigint]) async throws {
    try prepareDirectories()
    let group = ServiceGroup(
      configuration: ServiceGroupConfiguration(
        services: plugins.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) },
        gracefulShutdownSignals: gracefulShutdownSignals,
        logger: logger))
    logger.info(
      "starting",
      metadata: [
        "resources": "\(config.resources.map(\.name))",
        "devicePluginDir": "\(config.kubelet.devicePluginDir)",
      ])
    try await group.run()
    logger.info("stopped")
  }
}
