import VaccelConfig

/// Slot accounting for one resource: which device IDs exist, their health, and the order in
/// which free ones are preferred. A plain value: `DeviceManager` owns the only instance.
struct SlotTable: Sendable {
  struct Slot: Sendable, Equatable {
    let index: Int
    let id: String
    var healthy = true
    var unhealthyReason: String?
    var allocations = 0
    /// Logical time of the last allocation (0 = never), for the spread policy.
    var lastAllocated: UInt64 = 0
    /// Held by a container (since Allocate, or as pod-resources reports).
    var allocated = false
    /// When Allocate handed the slot out, until pod-resources lists its holder: the kubelet
    /// records an allocation a moment after Allocate returns, and `allocationGrace` covers that.
    var allocatedAt: ContinuousClock.Instant?
    var holder: Holder?
    /// The slot's agent is running and passed its probe.
    var agentReady = false
  }

  private(set) var slots: [Slot]
  /// Kept as the slots change, so metrics never recount every slot (O(1) a change).
  private(set) var healthyCount: Int
  private(set) var allocatedCount = 0
  private(set) var agentReadyCount = 0
  private var clock: UInt64 = 0
  let policy: AllocationPolicy

  /// `ids`: the slots' device IDs if someone made them already (the agent pool's slots), to
  /// share their strings: an ID longer than 15 bytes (a small string's most) is a heap string,
  /// 48 bytes or more, and a copy of its own per slot. Each must be `resource.deviceID(slot:)`.
  init(resource: ResourceConfig, ids: [String]? = nil) {
    precondition(ids.map { $0.count == resource.slots } ?? true, "one device ID per slot")
    self.slots = (0..<resource.slots).map { Slot(index: $0, id: ids?[$0] ?? resource.deviceID(slot: $0)) }
    self.healthyCount = resource.slots
    self.policy = resource.policy
  }

  var devices: [DeviceStatus] { slots.map { DeviceStatus(id: $0.id, healthy: $0.healthy) } }

  /// The slot of a device ID, by the index it ends in (`<slug>-<index>`), checked against that
  /// slot's own ID: a dictionary from IDs to slots cost 48 bytes a slot.
  func index(of id: String) -> Int? {
    guard let dash = id.lastIndex(of: "-"), let index = Int(id[id.index(after: dash)...]),
      slots.indices.contains(index), slots[index].id == id
    else { return nil }
    return index
  }

  /// Resolves device IDs from a request: every ID known, none twice.
  func resolve(_ ids: [String], resourceName: String) throws(PluginError) -> [Int] {
    var seen = Set<Int>()
    var indices: [Int] = []
    for id in ids {
      guard let index = index(of: id) else {
        throw .invalidArgument("unknown device ID \(PluginError.quote(id)) for resource \(resourceName)")
      }
      guard seen.insert(index).inserted else {
        throw .invalidArgument("device ID \(PluginError.quote(id)) is requested more than once")
      }
      indices.append(index)
    }
    return indices
  }

  /// Returns whether the health actually changed.
  mutating func setHealth(slot index: Int, healthy: Bool, reason: String?) -> Bool {
    let changed = slots[index].healthy != healthy
    if changed { healthyCount += healthy ? 1 : -1 }
    slots[index].healthy = healthy
    slots[index].unhealthyReason = healthy ? nil : reason
    return changed
  }

  mutating func recordAllocation(_ indices: [Int], at now: ContinuousClock.Instant = .now) {
    for index in indices {
      clock += 1
      slots[index].allocations += 1
      slots[index].lastAllocated = clock
      if !slots[index].allocated { allocatedCount += 1 }
      slots[index].allocated = true
      slots[index].allocatedAt = now
      slots[index].holder = nil
    }
  }

  /// A holder learned from pod-resources or a checkpoint; returns whether the slot was free.
  /// `since` nil: no grace (a slot recovered after a restart, no Allocate in flight for it).
  mutating func recordHolder(_ holder: Holder?, slot index: Int, since: ContinuousClock.Instant? = .now) -> Bool {
    let wasFree = !slots[index].allocated
    if wasFree {
      slots[index].allocatedAt = since
      allocatedCount += 1
    }
    slots[index].allocated = true
    if let holder {
      slots[index].holder = holder
      // pod-resources lists the holder: the grace for a not-yet-listed allocation is over, and
      // a holder that disappears from now on is freed at the next poll.
      slots[index].allocatedAt = nil
    }
    return wasFree
  }

  mutating func free(slot index: Int) {
    if slots[index].allocated { allocatedCount -= 1 }
    slots[index].allocated = false
    slots[index].allocatedAt = nil
    slots[index].holder = nil
  }

  mutating func setAgentReady(slot index: Int, _ ready: Bool) {
    if slots[index].agentReady != ready { agentReadyCount += ready ? 1 : -1 }
    slots[index].agentReady = ready
  }

  /// `mustInclude` first, then the best of the rest: healthy before unhealthy, then by policy.
  func preferred(_ request: PreferenceRequest, resourceName: String) throws(PluginError) -> [String] {
    guard request.size >= 1 else {
      throw .invalidArgument("allocation_size \(request.size) must be at least 1")
    }
    let available = try resolve(request.available, resourceName: resourceName)
    let required = try resolve(request.mustInclude, resourceName: resourceName)
    guard request.size <= available.count else {
      throw .invalidArgument("allocation_size \(request.size) exceeds the \(available.count) available devices")
    }
    guard required.count <= request.size else {
      throw .invalidArgument("\(required.count) must-include devices exceed allocation_size \(request.size)")
    }
    let availableSet = Set(available)
    if let stray = required.first(where: { !availableSet.contains($0) }) {
      throw .invalidArgument("must-include device \(PluginError.quote(slots[stray].id)) is not among the available ones")
    }
    let requiredSet = Set(required)
    let candidates = available.filter { !requiredSet.contains($0) }.sorted { isPreferred(slots[$0], over: slots[$1]) }
    return (required + candidates.prefix(request.size - required.count)).map { slots[$0].id }
  }

  private func isPreferred(_ a: Slot, over b: Slot) -> Bool {
    if a.healthy != b.healthy { return a.healthy }
    if a.agentReady != b.agentReady { return a.agentReady }
    switch policy {
    case .pack:
      return a.index < b.index
    case .spread:
      return (a.lastAllocated, a.index) < (b.lastAllocated, b.index)
    }
  }
}
