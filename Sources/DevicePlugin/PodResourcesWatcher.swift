import GRPCCore
import GRPCUnixClient
import KubeletAPI
public import Logging
public import ServiceLifecycle
public import VaccelConfig

/// Lists which container holds which device; a seam so the poller can be driven by a double.
public protocol PodResourcesListing: Sendable {
  /// resource name → device ID → holder.
  func list() async throws -> [String: [String: Holder]]
}

/// The kubelet's pod-resources `List` over its unix socket.
public struct GRPCPodResourcesClient: PodResourcesListing {
  public let socketPath: String

  public init(socketPath: String) {
    self.socketPath = socketPath
  }

  public func list() async throws -> [String: [String: Holder]] {
    let transport = UnixClientTransport(path: socketPath, authority: "localhost")
    let response = try await withGRPCClient(transport: transport) { client in
      var options = CallOptions.defaults
      options.timeout = .seconds(10)
      options.waitForReady = false
      return try await V1_PodResourcesLister.Client(wrapping: client).list(V1_ListPodResourcesRequest(), options: options)
    }
    var held: [String: [String: Holder]] = [:]
    for pod in response.podResources {
      for container in pod.containers {
        let holder = Holder(namespace: pod.namespace, pod: pod.name, container: container.name)
        for devices in container.devices {
          for id in devices.deviceIds {
            held[devices.resourceName, default: [:]][id] = holder
          }
        }
      }
    }
    return held
  }
}

/// Polls pod-resources (every `podResourcesInterval`; the kubelet offers no watch) to learn
/// who holds each slot and which slots nobody holds any more. A failed poll changes nothing:
/// slots are only freed on what a successful `List` says.
public struct PodResourcesWatcher: Service, CustomStringConvertible {
  public let client: any PodResourcesListing
  let managers: [DeviceManager]
  let interval: Duration
  let grace: Duration
  let logger: Logger
  /// Poll results, for tests and metrics.
  let onPoll: @Sendable (Result<Void, any Error>) -> Void

  public static let maxBackoff: Duration = .seconds(60)

  public init(
    client: any PodResourcesListing, managers: [DeviceManager], kubelet: KubeletConfig, logger: Logger,
    onPoll: @escaping @Sendable (Result<Void, any Error>) -> Void = { _ in }
  ) {
    self.client = client
    self.managers = managers
    self.interval = kubelet.podResourcesInterval
    self.grace = kubelet.allocationGrace
    self.logger = logger
    self.onPoll = onPoll
  }

  public var description: String { "PodResourcesWatcher" }

  public func run() async throws {
    // Graceful shutdown does not cancel a sleeping task by itself: make it.
    await cancelWhenGracefulShutdown { await poll() }
  }

  private func poll() async {
    var delay = interval
    var lastError = ""
    repeat {
      do {
        try await pollOnce()
        delay = interval
        lastError = ""
        onPoll(.success(()))
      } catch {
        onPoll(.failure(error))
        if let rpc = error as? RPCError, rpc.code == .resourceExhausted {
          delay = min(delay * 2, Self.maxBackoff)
          logger.warning("pod-resources is rate-limiting us; backing off", metadata: ["delay": "\(delay)"])
        } else if "\(error)" != lastError {
          // Absent socket (no kubelet yet) is normal; say it once, not every poll.
          lastError = "\(error)"
          logger.info("pod-resources not available", metadata: ["error": "\(error)"])
        }
      }
    } while (try? await Task.sleep(for: delay)) != nil
  }

  /// One `List`, applied to every resource.
  public func pollOnce() async throws {
    let held = try await client.list()
    for manager in managers {
      await manager.updateHolders(held[manager.resource.name] ?? [:], grace: grace)
      await manager.followSandboxes()
    }
  }
}
