public import NodeSupport
import KubeletAPI
public import Logging
public import ServiceLifecycle
public import VaccelConfig

/// Serves one resource's `DevicePlugin` socket and keeps it registered with the kubelet through
/// kubelet restarts, folder wipes and a kubelet that is not there yet. Slot policy is
/// `DeviceManager`'s; this type only owns the socket and the registration.
public struct ResourcePlugin: Service {
  public let manager: DeviceManager
  public let socketPath: String
  let kubeletSocket: String
  let devicePluginDir: String
  let recheckInterval: Duration
  let registrar: any KubeletRegistering
  let watcher: any DirectoryWatching
  let logger: Logger
  public let registration = RegistrationStatus()

  public init(
    manager: DeviceManager,
    kubelet: KubeletConfig,
    registrar: any KubeletRegistering,
    watcher: any DirectoryWatching,
    logger: Logger
  ) {
    self.manager = manager
    self.devicePluginDir = kubelet.devicePluginDir
    self.socketPath = kubelet.devicePluginDir.joiningPath(manager.resource.endpointFileName)
    self.kubeletSocket = kubelet.registrationSocket
    self.recheckInterval = kubelet.recheckInterval
    self.registrar = registrar
    self.watcher = watcher
    var logger = logger
    logger[metadataKey: "resource"] = "\(manager.resource.name)"
    self.logger = logger
  }

  public func run() async throws {
    try Directories.create(devicePluginDir)
    let changes = try watcher.changes(in: devicePluginDir)
    let (triggers, trigger) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    let loop = RegistrationLoop(plugin: self)

    await withTaskCancellationOrGracefulShutdownHandler {
      await withDiscardingTaskGroup { group in
        group.addTask {
          for await _ in changes { trigger.yield() }
        }
        // The safety net behind inotify: a slow re-check, interval from the config.
        group.addTask {
          while (try? await Task.sleep(for: recheckInterval)) != nil { trigger.yield() }
        }
        trigger.yield()
        // At most one retry timer at a time: a new one only once the last one is due.
        var retryDue: ContinuousClock.Instant?
        for await _ in triggers {
          if let due = retryDue, ContinuousClock.now >= due { retryDue = nil }
          if let delay = await loop.reconcile(), retryDue == nil {
            retryDue = .now + delay
            group.addTask {
              if (try? await Task.sleep(for: delay)) != nil { trigger.yield() }
            }
          }
        }
        group.cancelAll()
      }
    } onCancelOrGracefulShutdown: {
      trigger.finish()
    }
    await loop.stop()
  }
}

extension ResourcePlugin: CustomStringConvertible {
  public var description: String { "ResourcePlugin(\(manager.resource.name))" }
}

/// The registration state machine; used from the plugin's run loop only.
final class RegistrationLoop {
  private let plugin: ResourcePlugin
  private var server: PluginServer?
  /// The kubelet.sock registered with (its file identity).
  private var registeredWith: FileIdentity?
  private var failures = 0
  private var waitingLogged = false
  private(set) var registrations = 0

  init(plugin: ResourcePlugin) {
    self.plugin = plugin
  }

  private var logger: Logger { plugin.logger }

  /// Brings reality in line: our socket served, and registered with the current kubelet.
  /// Returns a delay after which to try again when something failed.
  func reconcile() async -> Duration? {
    let served = server?.identity.flatMap { identity in
      Directories.identity(of: plugin.socketPath).map { $0.isSameFile(as: identity) }
    } ?? false
    if !served {
      if let old = server {
        plugin.manager.metrics?.registration(resource: plugin.manager.resource.name, registered: false)
        logger.warning("plugin socket vanished; serving it again", metadata: ["socket": "\(plugin.socketPath)"])
        plugin.registration.set(.starting)
        await old.stop(grace: nil)
        server = nil
      }
      registeredWith = nil
      do {
        server = try await PluginServer.start(
          path: plugin.socketPath, services: [DevicePluginService(manager: plugin.manager)])
        logger.info("serving", metadata: ["socket": "\(plugin.socketPath)"])
      } catch {
        logger.error("cannot serve the plugin socket", metadata: ["socket": "\(plugin.socketPath)", "error": "\(error)"])
        plugin.registration.set(.starting, error: "cannot serve \(plugin.socketPath): \(error)")
        return backoff()
      }
    }

    guard let kubelet = Directories.identity(of: plugin.kubeletSocket) else {
      if !waitingLogged {
        logger.info("waiting for the kubelet", metadata: ["socket": "\(plugin.kubeletSocket)"])
        waitingLogged = true
      }
      plugin.registration.set(.waitingForKubelet)
      return nil
    }
    // The same socket file, whatever happened to its metadata (a chmod, a relabel or a link
    // changes its ctime): one registration per kubelet.sock.
    if let registeredWith, kubelet.isSameFile(as: registeredWith) { return nil }

    let request = V1beta1_RegisterRequest.forResource(
      name: plugin.manager.resource.name, endpoint: plugin.manager.resource.endpointFileName)
    do {
      try await plugin.registrar.register(request, socketPath: plugin.kubeletSocket)
    } catch {
      logger.warning("registration failed; retrying", metadata: ["error": "\(error)", "attempt": "\(failures + 1)"])
      plugin.registration.set(.retrying, error: "\(error)")
      return backoff()
    }
    registeredWith = kubelet
    registrations += 1
    plugin.registration.set(.registered)
    plugin.manager.metrics?.registration(resource: plugin.manager.resource.name, registered: true)
    failures = 0
    waitingLogged = false
    logger.notice("registered with the kubelet", metadata: ["registrations": "\(registrations)"])
    return nil
  }

  /// 100 ms doubling to 5 s: a kubelet that has just created its socket may not accept yet.
  private func backoff() -> Duration {
    let delay = Duration.milliseconds(100 << min(failures, 6))
    failures += 1
    return min(delay, .seconds(5))
  }

  /// Shutdown: no new RPCs, `ListAndWatch` streams completed, socket removed.
  func stop() async {
    plugin.manager.metrics?.registration(resource: plugin.manager.resource.name, registered: false)
    plugin.registration.set(.stopped)
    guard let server else {
      await plugin.manager.finishWatchers()
      return
    }
    self.server = nil
    async let stopped: Void = server.stop(grace: .seconds(5))
    await plugin.manager.finishWatchers()
    await stopped
    server.removeSocketFile()
    logger.info("stopped serving", metadata: ["socket": "\(plugin.socketPath)"])
  }
}
