import NIOPosix
public import Logging
public import ServiceLifecycle
public import VaccelMetrics

/// Writes the checkpoint after changes, coalescing bursts: while one write runs, any number
/// of further changes make one more write, never a queue of them.
public struct CheckpointWriter: Service, CustomStringConvertible {
  public let store: CheckpointStore
  let managers: [DeviceManager]
  let logger: Logger
  let metrics: DaemonMetrics?
  private let dirty: AsyncStream<Void>
  private let continuation: AsyncStream<Void>.Continuation

  public init(store: CheckpointStore, managers: [DeviceManager], logger: Logger, metrics: DaemonMetrics? = nil) {
    self.store = store
    self.managers = managers
    self.logger = logger
    self.metrics = metrics
    (dirty, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
  }

  public var description: String { "CheckpointWriter" }

  public func markDirty() {
    continuation.yield()
  }

  /// Bursts (an allocation changes a slot several times; 1024 node checks change 1024 slots)
  /// collapse into one write per interval. Recovery also rebuilds from pod-resources and the
  /// running agents, so a checkpoint at most this far behind loses nothing.
  public static let minimumInterval: Duration = .milliseconds(100)

  /// Encoding every slot and two fsyncs run on this thread of their own, not where the
  /// daemon's other tasks run (its one event loop, in the executable): Allocate among them
  /// would wait while a blocking call held it. Started by the first write; it then waits for
  /// the next one.
  static let disk: NIOThreadPool = {
    let pool = NIOThreadPool(numberOfThreads: 1)
    pool.start()
    return pool
  }()

  public func run() async {
    for await _ in dirty.cancelOnGracefulShutdown() {
      await writeNow()
      try? await Task.sleep(for: Self.minimumInterval)  // changes meanwhile: one more write
    }
  }

  /// Writes the current state now. A failed write leaves the previous checkpoint intact.
  public func writeNow() async {
    var checkpoint = Checkpoint()
    for manager in managers {
      checkpoint.resources[manager.resource.name] = await manager.checkpointSlots
    }
    let store = self.store, snapshot = checkpoint
    do {
      try await Self.disk.runIfActive { try store.save(snapshot) }
      metrics?.checkpointWrite(ok: true)
    } catch {
      metrics?.checkpointWrite(ok: false)
      logger.error("cannot write the checkpoint; the previous one is kept", metadata: ["error": "\(error)"])
    }
  }
}
