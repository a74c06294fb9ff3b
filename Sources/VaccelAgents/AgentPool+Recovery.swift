import VaccelConfig

/// What the checkpoint says of a held slot's agent.
public struct HeldAgent: Sendable, Equatable {
  /// The allocation its endpoint names (nil when the checkpoint is lost or names none).
  public var allocation: String?
  public var pid: Int32?

  public init(allocation: String? = nil, pid: Int32? = nil) {
    self.allocation = allocation
    self.pid = pid
  }
}

extension AgentPool {
  /// After a daemon restart. A held slot keeps the place its holder has mounted: the
  /// allocation folder on disk (a slot has at most one: the old one is removed before the next
  /// is made), else the one a running agent of the slot listens in, else the one the
  /// checkpoint names. The checkpoint comes last because it can be older than the last
  /// hand-out (writes are coalesced; a SIGKILL can land in between), and the folder cannot. The agent the previous daemon left there is adopted; every
  /// other agent left on the slot is stopped, and every other allocation folder removed (a
  /// free slot's all). Agents are found by their listen address, so this works without a
  /// checkpoint. Returns the held slots whose agent was adopted; the others need a new one.
  ///
  /// Throws when the running agents cannot be known (an agent host that does not answer):
  /// starting agents blind would take over the sockets of the ones still serving pods.
  public func recover(held: [Int: HeldAgent]) async throws(LaunchError) -> Set<Int> {
    let running = try await leftoverAgents()
    var adopted = Set<Int>()
    for slot in slots {
      let index = slot.context.index
      let addressing = slot.context.addressing
      var leftovers = running[index] ?? []
      var keep: String?
      if let record = held[index] {
        keep = SlotFolder.newestAllocation(of: addressing) ?? leftovers.first?.allocation ?? record.allocation
        // The one the checkpoint names first, then any other agent in the kept place.
        let candidates = leftovers.indices.filter { leftovers[$0].allocation == keep }
        let pick = candidates.first { leftovers[$0].pid == record.pid } ?? candidates.first
        if let pick, let keep, await slot.adopt(pid: leftovers[pick].pid, allocation: keep) {
          adopted.insert(index)
          leftovers.remove(at: pick)
        } else if let keep {
          await slot.resume(allocation: keep)
        }
        markHeld(index)
      }
      for leftover in leftovers {
        logger.notice(
          "stopping an agent left by the previous daemon",
          metadata: ["slot": "\(slot.context.slotID)", "pid": "\(leftover.pid)"])
        await launcher.attach(pid: leftover.pid)?.terminate(grace: resource.agent.stopGracePeriod)
      }
      SlotFolder.removeAllocations(of: addressing, keeping: keep)
    }
    return adopted
  }

  /// Agents of this pool's slots running now (slot index → pid and allocation), in one pass
  /// over /proc (or one question to the agent host).
  func leftoverAgents() async throws(LaunchError) -> [Int: [(pid: Int32, allocation: String)]] {
    let addressings = slots.map(\.context.addressing)
    let indexByID = Dictionary(uniqueKeysWithValues: addressings.map { ($0.slotID, $0.index) })
    var found: [Int: [(pid: Int32, allocation: String)]] = [:]
    if let first = addressings.first?.slotFolder {
      // unix: "unix://<runDir>/<slug>/<slot-id>/…"; the slot from its folder's name.
      let prefix = "unix://" + first[...(first.lastIndex(of: "/") ?? first.startIndex)]
      for agent in try await launcher.runningAgents(withArgumentWhere: { $0.hasPrefix(prefix) }) {
        let rest = agent.argument.dropFirst(prefix.count)
        guard let slotID = rest.split(separator: "/").first, let index = indexByID[String(slotID)],
          let allocation = addressings[index].allocation(ofListenAddress: agent.argument)
        else { continue }
        found[index, default: []].append((agent.pid, allocation))
      }
    } else if let port = addressings.first?.hybridPort {
      // hybrid-vsock: "unix://<a VM's socket>_<port>"; the slot from the agent's environment.
      let suffix = "_\(port)"
      for agent in try await launcher.runningAgents(withArgumentWhere: { $0.hasPrefix("unix:///") && $0.hasSuffix(suffix) }) {
        guard let slotID = agent.slot, let index = indexByID[slotID],
          let allocation = addressings[index].allocation(ofListenAddress: agent.argument)
        else { continue }
        found[index, default: []].append((agent.pid, allocation))
      }
    } else {
      let indexByAddress = Dictionary(
        addressings.map { ($0.endpoint(allocation: "").listen.description, $0.index) }, uniquingKeysWith: { a, _ in a })
      for agent in try await launcher.runningAgents(withArgumentWhere: { indexByAddress[$0] != nil }) {
        found[indexByAddress[agent.argument]!, default: []].append((agent.pid, ""))
      }
    }
    return found
  }
}
