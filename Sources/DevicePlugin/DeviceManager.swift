import CRIClient
public import Logging
public import VaccelAgents
public import VaccelConfig
public import VaccelMetrics

/// Owns one resource's slots: health, allocations and holders, preferences, the agents behind
/// the slots (through `AgentPool`), and the `ListAndWatch` subscribers that hear every change.
public actor DeviceManager {
  public nonisolated let resource: ResourceConfig
  /// nil for `agents: runtime` resources, whose sandbox runtime starts its own agents.
  public nonisolated let agents: AgentPool?
  public nonisolated let metrics: DaemonMetrics?
  /// hybrid-vsock: how a holder's VM sandbox is found (nil for the other transports).
  public nonisolated let sandboxes: SandboxJoin?
  fileprivate var table: SlotTable
  fileprivate var agentStatus: [SlotAgentStatus]
  /// Where each slot's pod reaches it when no agent of ours says (`agents: runtime`).
  private let runtimeEndpoints: [String]
  private var watchers: [UInt64: AsyncStream<[DeviceStatus]>.Continuation] = [:]
  private var nextWatcher: UInt64 = 0
  private let logger: Logger
  private var onChange: @Sendable () -> Void = {}
  /// Status watchers: each hears "something changed" (the newest only), never what.
  private var changeWatchers: [UInt64: AsyncStream<Void>.Continuation] = [:]
  private var slotWaiters: [UInt64: SlotWaiter] = [:]
  /// The recycle of a freed slot's agent, started the moment the slot is freed. Whatever gives
  /// the slot an agent next (Allocate, a take-on) waits for it first: the kubelet may hand the
  /// slot to a new pod while the old pod's agent is still being stopped, and a recycle that
  /// landed after the hand-out would stop the new pod's agent (the chaos soak saw it).
  private var releases: [Int: Task<Void, Never>] = [:]
  private var nextSlotWaiter: UInt64 = 0

  private struct SlotWaiter {
    let index: Int
    let predicate: @Sendable (SlotState) -> Bool
    let continuation: CheckedContinuation<SlotState, any Error>
  }

  public init(
    resource: ResourceConfig, agents: AgentPool? = nil, metrics: DaemonMetrics? = nil, sandboxes: SandboxJoin? = nil,
    logger: Logger
  ) {
    self.resource = resource
    self.agents = agents
    self.metrics = metrics
    self.sandboxes = resource.transport == .hybridVsock ? sandboxes : nil
    self.table = SlotTable(resource: resource, ids: agents?.slots.map(\.context.slotID))
    self.agentStatus = Array(repeating: SlotAgentStatus(), count: resource.slots)
    self.runtimeEndpoints = (0..<resource.slots).map { index in
      agents == nil ? SlotEndpoint.podAddress(resource: resource, slot: index, containerPath: resource.containerPath) : ""
    }
    var logger = logger
    logger[metadataKey: "resource"] = "\(resource.name)"
    self.logger = logger
  }

  /// Called after every change worth a checkpoint.
  public func setOnChange(_ onChange: @escaping @Sendable () -> Void) {
    self.onChange = onChange
  }

  /// Slot counts by state and open streams, for metrics: O(1), from the table's own counts.
  private func report() {
    guard let metrics else { return }
    let total = table.slots.count
    metrics.slots(
      resource: resource.name,
      byState: [
        "total": total, "healthy": table.healthyCount, "unhealthy": total - table.healthyCount,
        "allocated": table.allocatedCount, "free": total - table.allocatedCount,
        "warm": table.agentReadyCount,
      ])
    metrics.listAndWatch(resource: resource.name, streams: watchers.count)
  }

  /// A tick after every change of this resource's slots or agents, until cancelled.
  public func changes() -> AsyncStream<Void> {
    let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    let id = nextWatcher
    nextWatcher += 1
    changeWatchers[id] = continuation
    continuation.onTermination = { [weak self] _ in
      Task { await self?.removeChangeWatcher(id) }
    }
    return stream
  }

  private func removeChangeWatcher(_ id: UInt64) {
    changeWatchers[id] = nil
  }

  private func changed() {
    onChange()
    for watcher in changeWatchers.values { watcher.yield() }
    report()
    guard !slotWaiters.isEmpty else { return }
    let states = slotStates
    for (id, waiter) in slotWaiters where waiter.predicate(states[waiter.index]) {
      slotWaiters.removeValue(forKey: id)
      waiter.continuation.resume(returning: states[waiter.index])
    }
  }

  /// Waits until slot `id` satisfies `predicate` (checked after every change), at most `timeout`.
  public func waitForSlot(
    _ id: String, timeout: Duration, until predicate: @escaping @Sendable (SlotState) -> Bool
  ) async throws -> SlotState {
    let index = try table.resolve([id], resourceName: resource.name)[0]
    let now = slotStates[index]
    if predicate(now) { return now }
    let key = nextSlotWaiter
    nextSlotWaiter += 1
    let timer = Task {
      try await Task.sleep(for: timeout)
      self.expireSlotWaiter(key, id: id, timeout: timeout)
    }
    defer { timer.cancel() }
    return try await withCheckedThrowingContinuation { continuation in
      slotWaiters[key] = SlotWaiter(index: index, predicate: predicate, continuation: continuation)
    }
  }

  private func expireSlotWaiter(_ key: UInt64, id: String, timeout: Duration) {
    let state = slotStates.first { $0.id == id }
    slotWaiters.removeValue(forKey: key)?.continuation.resume(
      throwing: PluginError.unavailable("slot \(id) did not reach the expected state within \(timeout); it is \(String(describing: state))"))
  }

  public var devices: [DeviceStatus] { table.devices }

  // MARK: ListAndWatch

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
    report()
    return DeviceWatch(updates: stream, continuation: continuation)
  }

  private func removeWatcher(_ id: UInt64) {
    watchers[id] = nil
    report()
  }

  /// Ends every subscription (daemon shutdown): `ListAndWatch` streams then complete.
  public func finishWatchers() {
    for continuation in watchers.values { continuation.finish() }
    watchers.removeAll()
    for continuation in changeWatchers.values { continuation.finish() }
    changeWatchers.removeAll()
  }

  private func broadcast() {
    let devices = table.devices
    for continuation in watchers.values { continuation.yield(devices) }
  }

  // MARK: Health

  public func setHealth(deviceID: String, healthy: Bool, reason: String? = nil) throws(PluginError) {
    let index = try table.resolve([deviceID], resourceName: resource.name)[0]
    applyHealth(index, healthy: healthy, reason: reason)
  }

  private func applyHealth(_ index: Int, healthy: Bool, reason: String?) {
    guard table.setHealth(slot: index, healthy: healthy, reason: reason) else { return }
    logger.notice(
      "device health changed",
      metadata: ["slot": "\(table.slots[index].id)", "healthy": "\(healthy)", "reason": "\(reason ?? "")"])
    broadcast()
    report()
  }

  /// Follows the agents' status changes until cancelled: health into `ListAndWatch`,
  /// readiness into preferences, pids into the checkpoint.
  public func followAgents() async {
    guard let agents else { return }
    for await index in agents.statusChanges {
      // The latest status: a slot that changed twice meanwhile is read twice, alike.
      let status = await agents.slots[index].snapshot
      agentStatus[index] = status
      // Preferred: a free slot whose agent is up and never served anyone (the warm pool).
      table.setAgentReady(slot: index, status.phase == .ready && !status.handedOut)
      applyHealth(index, healthy: status.healthy, reason: status.unhealthyReason)
      changed()
    }
  }

  // MARK: Allocation

  /// One reply per container request, in order. All requests are checked before any is
  /// acted on, so a bad request changes nothing. Each slot then gets a fresh agent that never
  /// served anyone, in a folder of the allocation's own; the reply does not wait for it to be
  /// ready (PreStartContainer does). UNAVAILABLE only when the node cannot run agents.
  public func allocate(_ requests: [[String]]) async throws(PluginError) -> [ContainerAllocation] {
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
    for indices in resolved {
      table.recordAllocation(indices)
    }
    changed()
    var endpoints: [Int: AgentEndpoint] = [:]
    if let agents {
      for index in resolved.joined() {
        do {
          await releases[index]?.value
          endpoints[index] = try await agents.handOut(index)
        } catch {
          logger.warning("allocation failed: no agent", metadata: ["slot": "\(table.slots[index].id)", "error": "\(error)"])
          throw .unavailable("\(table.slots[index].id): \(error)")
        }
      }
    }
    return resolved.map { indices in
      logger.info("allocated", metadata: ["slots": "\(indices.map { table.slots[$0].id })"])
      return resource.agents == .runtime
        ? ContainerAllocation.runtimeManaged(resource: resource, slots: indices)
        : ContainerAllocation(resource: resource, slots: indices, endpoints: endpoints)
    }
  }

  /// Before every container start, restarts included: the holder's own agent is up and ready
  /// (bounded by `agent.readyTimeout`; the kubelet allows 30 s), else UNAVAILABLE with the
  /// agent's last error. This is where a pod waits for its agent, not in Allocate: Allocate runs
  /// in the kubelet's admission loop, which every pod on the node waits on, and a failing agent
  /// then fails a container start, which the kubelet retries, instead of the pod's admission.
  public func preStart(_ ids: [String]) async throws(PluginError) {
    guard !ids.isEmpty else { throw .invalidArgument("PreStartContainer names no devices") }
    let indices = try table.resolve(ids, resourceName: resource.name)
    guard let agents else { return }
    for index in indices {
      if let sandboxes {
        try await bindSandbox(index, join: sandboxes)
      }
      do {
        try await agents.ensureReady(index, within: resource.agent.readyTimeout)
      } catch {
        throw .unavailable("\(table.slots[index].id): \(error)")
      }
    }
  }

  /// hybrid-vsock, at PreStartContainer: the holder's VM sandbox is found (the VM runs by now)
  /// and the slot's agent placed beside its socket.
  private func bindSandbox(_ index: Int, join: SandboxJoin) async throws(PluginError) {
    let id = table.slots[index].id
    let place = try await join.locate(slotID: id, resource: resource.name, holder: table.slots[index].holder)
    if let other = agentStatus.indices.first(where: { $0 != index && table.slots[$0].allocated && agentStatus[$0].sandboxSocket == place.socket }) {
      throw .unavailable(
        "\(id): VM sandbox \(place.id) already has the agent of \(table.slots[other].id) on port \(resource.basePort): "
          + "one VM gets one agent per hybrid-vsock resource; request \(resource.name) in one container of the pod")
    }
    await agents?.bind(index, sandboxID: place.id, socket: place.socket)
  }

  /// hybrid-vsock, after every pod-resources poll: each held slot's agent follows its holder's
  /// sandbox. A VM socket that is gone, or a pod with no ready sandbox, stops the agent (and
  /// removes its socket); a new sandbox of the pod (recreated: a new id) moves it there; a held
  /// slot with no agent placed yet (a daemon restart, a lost start) gets one. When the runtime
  /// does not answer, only vanished sockets count.
  public func followSandboxes() async {
    // Nothing held, nothing to follow: no ListPodSandbox call every poll on an idle node.
    guard let sandboxes, let agents, table.allocatedCount > 0 else { return }
    let current = await sandboxes.currentSandboxes()
    for slot in table.slots where slot.allocated {
      var bound = agentStatus[slot.index].sandboxSocket.map { (id: agentStatus[slot.index].sandboxID, socket: $0) }
      if let socket = bound?.socket, !CRISandboxLocator.isSocket(socket) {
        await agents.slots[slot.index].unbind(why: "its VM socket \(socket) is gone")
        bound = nil
      }
      guard let current, let holder = slot.holder else { continue }
      let pod = "\(holder.namespace)/\(holder.pod)"
      guard let sandbox = current[pod], case .found(let socket) = sandboxes.locator.vmSocket(of: sandbox.id) else {
        if bound != nil {
          await agents.slots[slot.index].unbind(why: "pod \(pod) has no ready VM sandbox")
        }
        continue
      }
      guard socket != bound?.socket || sandbox.id != bound?.id else { continue }
      await agents.bind(slot.index, sandboxID: sandbox.id, socket: socket)
      await takeOn(slot.index)
    }
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

  // MARK: Holders

  /// What pod-resources says holds this resource's slots (device ID → holder). Slots held
  /// and unknown to us are taken on (their agent started); slots we think held that nobody
  /// holds any more are freed and recycled, unless allocated within `grace` and not listed
  /// since (the kubelet records an allocation only after Allocate returns).
  public func updateHolders(_ held: [String: Holder], grace: Duration, now: ContinuousClock.Instant = .now) async {
    var freed: [Int] = []
    let before = table.slots.map { ($0.allocated, $0.holder) }
    for (id, holder) in held {
      guard let index = table.index(of: id) else { continue }
      if table.recordHolder(holder, slot: index) {
        logger.info("slot held by a pod we had not allocated for", metadata: ["slot": "\(id)", "holder": "\(holder)"])
        await takeOn(index)
      }
    }
    for slot in table.slots where slot.allocated && held[slot.id] == nil {
      if let since = slot.allocatedAt, now - since < grace { continue }
      table.free(slot: slot.index)
      freed.append(slot.index)
    }
    // An unchanged poll (the common case) writes nothing: no checkpoint fsync every interval.
    if !table.slots.map({ ($0.allocated, $0.holder) }).elementsEqual(before, by: { $0 == $1 }) {
      changed()
    }
    guard let agents else { return }
    var started: [Task<Void, Never>] = []
    for index in freed {
      logger.info("slot freed; recycling its agent", metadata: ["slot": "\(table.slots[index].id)"])
      let previous = releases[index]
      let release = Task {
        await previous?.value
        await agents.release(index)
      }
      releases[index] = release
      started.append(release)
    }
    for (index, release) in zip(freed, started) {
      await release.value
      // Forget it unless a later poll has chained another recycle behind it.
      if releases[index] == release { releases[index] = nil }
    }
  }

  /// A slot held by someone (pod-resources, or the checkpoint after a restart) gets its agent
  /// back at the same endpoint, without waiting here.
  private func takeOn(_ index: Int) async {
    guard let agents else { return }
    await agents.markHeld(index)
    // A VM sandbox's agent is placed first (PreStartContainer, `followSandboxes`).
    if sandboxes != nil, await agents.slots[index].sandbox == nil { return }
    let readyTimeout = resource.agent.readyTimeout
    let id = table.slots[index].id
    let logger = logger
    let release = releases[index]
    Task {
      await release?.value
      do {
        try await agents.ensureReady(index, within: readyTimeout)
      } catch {
        logger.warning("agent for a held slot not ready yet", metadata: ["slot": "\(id)", "error": "\(error)"])
      }
    }
  }

  // MARK: Restart

  /// This resource's part of the checkpoint.
  public var checkpointSlots: [Checkpoint.Slot] {
    table.slots.map { slot in
      let agent = agentStatus[slot.index]
      return Checkpoint.Slot(
        id: slot.id, allocated: slot.allocated, holder: slot.holder, generation: agent.generation,
        pid: agent.pid, endpoint: endpoint(slot.index))
    }
  }

  /// Where slot `index`'s agent listens now (or, without agents, what the pod dials).
  private func endpoint(_ index: Int) -> String {
    agentStatus[index].endpoint ?? runtimeEndpoints[index]
  }

  /// After a daemon restart: slots the checkpoint says are held are held again, and their
  /// agents recovered by the pool (adopted where the previous daemon left one running, else
  /// started again in the place the holder has mounted). Never two agents on one slot.
  ///
  /// `podResources` (device ID → holder, when the kubelet answered) counts as much as the
  /// checkpoint: with a torn checkpoint it is all there is.
  public func recover(from records: [Checkpoint.Slot]?, podResources: [String: Holder]?) async throws(LaunchError) {
    let byID = Dictionary((records ?? []).map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
    var held: [Int: HeldAgent] = [:]
    for slot in table.slots {
      let record = byID[slot.id]
      let listed = podResources?[slot.id]
      guard record?.allocated == true || listed != nil else { continue }
      _ = table.recordHolder(listed ?? record?.holder, slot: slot.index, since: nil)
      let allocation = record.flatMap { record in
        agents?.slots[slot.index].context.addressing.allocation(ofListenAddress: record.endpoint)
      }
      held[slot.index] = HeldAgent(allocation: allocation, pid: record?.pid)
    }
    if let agents {
      let adopted = try await agents.recover(held: held)
      for index in held.keys.sorted() where !adopted.contains(index) {
        await takeOn(index)
      }
    }
    changed()
  }

  /// Status of every slot, for the checkpoint and `vaccelctl status`.
  public var slotStates: [SlotState] {
    table.slots.map { slot in
      SlotState(
        id: slot.id, healthy: slot.healthy, unhealthyReason: slot.unhealthyReason, allocated: slot.allocated,
        holder: slot.holder, allocations: slot.allocations, agent: agentStatus[slot.index])
    }
  }
}

extension DeviceManager {
  /// Everything the status API reports for this resource, in one actor hop.
  public func statusSnapshot() -> ResourceSnapshot {
    ResourceSnapshot(
      slots: slotStates, endpoints: table.slots.indices.map(endpoint), healthy: table.healthyCount, allocated: table.allocatedCount,
      agentsReady: agentStatus.lazy.filter { $0.phase == .ready }.count)
  }
}

/// One resource's slots as the status API reports them.
public struct ResourceSnapshot: Sendable {
  public var slots: [SlotState]
  /// The address each slot's holder dials, by slot index.
  public var endpoints: [String]
  public var healthy: Int
  public var allocated: Int
  public var agentsReady: Int
}

/// One slot as status and the checkpoint see it.
public struct SlotState: Sendable, Equatable {
  public var id: String
  public var healthy: Bool
  public var unhealthyReason: String?
  public var allocated: Bool
  public var holder: Holder?
  public var allocations: Int
  public var agent: SlotAgentStatus
}

/// A `ListAndWatch` subscription; `cancel()` ends it from outside (RPC cancelled).
public struct DeviceWatch: Sendable {
  public let updates: AsyncStream<[DeviceStatus]>
  let continuation: AsyncStream<[DeviceStatus]>.Continuation

  public func cancel() { continuation.finish() }
}
