public import NodeSupport
public import Logging
public import VaccelConfig

/// Owns one resource's slots: health, allocations, preferences, and the `ListAndWatch`
/// subscribers that must hear about every change.
public actor DeviceManager {
  public nonisolated let resource: ResourceConfig
  public nonisolated let runDir: String
  private var table: SlotTable
  private var watchers: [UInt64: AsyncStream<[DeviceStatus]>.Continuation] = [:]
  private var nextWatcher: UInt64 = 0
  private let logger: Logger

  public init(resource: ResourceConfig, runDir: String, logger: Logger) {
    self.resource = resource
    self.runDir = runDir
    self.table = SlotTable(resource: resource)
    var logger = logger
    logger[metadataKey: "resource"] = "\(resource.name)"
    self.logger = logger
  }

  public var devices: [DeviceStatus] { table.devices }

  /// A subscription to the full device list: the current list at once, then a new one after
  /// every change. A slow reader only ever gets the newest list, which is all the kubelet needs.
  public func watch() -> DeviceWatch {
    let (stream, continuation) = AsyncStream.makeStream(
      of: [DeviceStatus].self, bufferingPolicy: .bufferingNewest(1))
    let id = nextWatcher
    nextWatcher += 1
    watchers[id] = continuation
    continuation.yield(table.devices)
    continuation.onTermination = { [weak self] _ in
      Task { await self?.removeWatcher(id) }
    }
    return DeviceWatch(updates: stream, continuation: continuation)
  }

  public var watcherCount: Int { watchers.count }

  private func removeWatcher(_ id: UInt64) {
    watchers[id] = nil
  }

  /// Ends every subscription (daemon shutdown): `ListAndWatch` streams then complete.
  public func finishWatchers() {
    for continuation in watchers.values { continuation.finish() }
    watchers.removeAll()
  }

  public func setHealth(deviceID: String, healthy: Bool, reason: String? = nil) throws(PluginError) {
    let index = try table.resolve([deviceID], resourceName: resource.name)[0]
    guard table.setHealth(slot: index, healthy: healthy, reason: reason) else { return }
    logger.notice(
      "device health changed",
      metadata: ["slot": "\(deviceID)", "healthy": "\(healthy)", "reason": "\(reason ?? "")"])
    broadcast()
  }

  private func broadcast() {
    let devices = table.devices
    for continuation in watchers.values { continuation.yield(devices) }
  }

  /// One reply per container request, in order. All requests are checked before any is
  /// acted on, so a bad request changes nothing.
  public func allocate(_ requests: [[String]]) throws(PluginError) -> [ContainerAllocation] {
    guard !requests.isEmpty else {
      throw .invalidArgument("AllocateRequest has no container requests")
    }
    var resolved: [[Int]] = []
    var claimed = Set<Int>()
    for (position, ids) in requests.enumerated() {
      guard !ids.isEmpty else {
        throw .invalidArgument("container request \(position) names no devices")
      }
      guard ids.count <= resource.maxPerContainer else {
        throw .invalidArgument(
          "container request \(position) asks for \(ids.count) devices of \(resource.name); "
            + "at most \(resource.maxPerContainer) per container")
      }
      let indices = try table.resolve(ids, resourceName: resource.name)
      if let twice = indices.first(where: { claimed.contains($0) }) {
        throw .invalidArgument("device \(table.slots[twice].id) is requested by two containers")
      }
      claimed.formUnion(indices)
      resolved.append(indices)
    }
    var replies: [ContainerAllocation] = []
    for indices in resolved {
      for index in indices {
        try prepareSlotDirectory(index)
      }
      table.recordAllocation(indices)
      replies.append(ContainerAllocation(resource: resource, runDir: runDir, slots: indices))
      logger.info("allocated", metadata: ["slots": "\(indices.map { table.slots[$0].id })"])
    }
    return replies
  }

  /// Checked before every container start; restarts included.
  public func preStart(_ ids: [String]) throws(PluginError) {
    guard !ids.isEmpty else { throw .invalidArgument("PreStartContainer names no devices") }
    _ = try table.resolve(ids, resourceName: resource.name)
  }

  public func preferred(_ requests: [PreferenceRequest]) throws(PluginError) -> [[String]] {
    guard !requests.isEmpty else {
      throw .invalidArgument("PreferredAllocationRequest has no container requests")
    }
    var answers: [[String]] = []
    for request in requests {
      answers.append(try table.preferred(request, resourceName: resource.name))
    }
    return answers
  }

  /// The mount source must exist before the container starts. `runDir` itself is recreated
  /// too: a tmpfs `/var/run` may have been cleared under a running daemon.
  private func prepareSlotDirectory(_ index: Int) throws(PluginError) {
    guard resource.transport == .unix else { return }
    do {
      try Directories.create(runDir)
      try Directories.create(resource.slug.joiningPath(table.slots[index].id), beneath: runDir)
    } catch {
      throw .internal("cannot prepare slot folder: \(error)")
    }
  }
}

/// A `ListAndWatch` subscription; `cancel()` ends it from outside (RPC cancelled).
public struct DeviceWatch: Sendable {
  public let updates: AsyncStream<[DeviceStatus]>
  let continuation: AsyncStream<[DeviceStatus]>.Continuation

  public func cancel() { continuation.finish() }
}
