import DevicePlugin
import NodeSupport
import Foundation
import Logging
import VaccelConfig

/// The real daemon, in-process, against a `FakeKubelet` in a fresh temp folder.
struct DaemonHarness {
  let directory: TestDirectory
  let config: DaemonConfig
  let kubelet: FakeKubelet
  let daemon: NodeDaemon
  private let task: Task<Void, any Error>

  var resource: String { config.resources[0].name }
  var socketPath: String { config.kubelet.devicePluginDir + "/" + config.resources[0].endpointFileName }
  var manager: DeviceManager { daemon.plugins[0].manager }

  static func config(in directory: TestDirectory, resources: [ResourceConfig] = [ResourceConfig()]) -> DaemonConfig {
    DaemonConfig(
      kubelet: KubeletConfig(
        devicePluginDir: directory.sub("dp"),
        podResourcesSocket: directory.sub("pod-resources.sock"),
        // Long, so that tests prove inotify drives re-registration; tests of the recheck
        // path set their own.
        recheckInterval: .seconds(3600)),
      runDir: directory.sub("run"),
      stateDir: directory.sub("state"),
      resources: resources)
  }

  /// Starts the kubelet first unless `kubeletFirst` is false.
  static func start(
    directory: TestDirectory? = nil,
    configure: (inout DaemonConfig) -> Void = { _ in },
    authority: FakeKubelet.Authority = .localhost,
    watcher: any DirectoryWatching = InotifyWatcher(),
    kubeletFirst: Bool = true
  ) async throws -> DaemonHarness {
    let directory = try directory ?? TestDirectory()
    var config = Self.config(in: directory)
    configure(&config)
    let kubelet = FakeKubelet(directory: config.kubelet.devicePluginDir, authority: authority)
    if kubeletFirst { try await kubelet.start() }
    let daemon = NodeDaemon(config: config, logger: .test, watcher: watcher)
    let task = Task { try await daemon.run(gracefulShutdownSignals: []) }
    return DaemonHarness(directory: directory, config: config, kubelet: kubelet, daemon: daemon, task: task)
  }

  /// Waits for `registrations` registrations with every device listed healthy.
  @discardableResult
  func registered(_ registrations: Int = 1) async throws -> FakeKubelet.State {
    let resource = resource
    let slots = config.resources[0].slots
    return try await kubelet.wait(for: "registration \(registrations) with \(slots) healthy devices") {
      $0.registrations >= registrations && $0.healthy(resource) == slots
        && $0.plugins[resource]?.streamOpen == true
    }
  }

  /// Stops the daemon as SIGTERM would and waits for it to finish.
  func stop() async throws {
    task.cancel()
    try await task.value
  }

  func shutdown() async {
    task.cancel()
    _ = await task.result
    await kubelet.stop()
  }
}

/// A watcher that never reports anything: only the periodic re-check can notice changes.
struct SilentWatcher: DirectoryWatching {
  func changes(in directory: String) throws -> AsyncStream<Void> {
    AsyncStream { _ in }
  }
}
