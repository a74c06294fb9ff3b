import DevicePlugin
import Foundation
import KubeletEmulation
import VaccelAgents
import VaccelCtlKit
import VaccelConfig
import VaccelRPC

extension ChaosRun {
  /// Checks every invariant until all hold or the recovery bound passes; returns how long
  /// recovery took, and records what still failed at the bound as violations.
  func settle(step: Int, event: ChaosPlan.Event, since: ContinuousClock.Instant) async -> Duration {
    let deadline = ContinuousClock.now + Self.recoveryBound
    var problems: [String] = []
    repeat {
      problems = await invariants()
      report.checks += 1
      if problems.isEmpty { return ContinuousClock.now - since }
      try? await Task.sleep(for: .milliseconds(20))  // re-check interval while recovering
    } while ContinuousClock.now < deadline
    report.violations += problems.map { "step \(step) (\(event)): \($0)" }
    return ContinuousClock.now - since
  }

  /// What must be true after every step; an empty list when it all holds.
  func invariants() async -> [String] {
    var problems: [String] = []

    // Every held slot's endpoint serves a ttrpc session.
    for (slot, pod) in held.sorted(by: { $0.key < $1.key }) where !(await sessionWorks(socket(slot))) {
      problems.append("\(slot) held by \(pod.pod): no session on \(socket(slot))")
    }

    // The status API: held slots have an agent; no agent serves two slots.
    guard let status = try? await StatusClient(socketPath: statusSocket, timeout: .seconds(1)).fetch(),
      let resource = status.resources.first
    else { return problems + ["the status API does not answer"] }
    let pids = resource.slots.map(\.agentPid).filter { $0 > 0 }
    if Set(pids).count != pids.count { problems.append("one agent pid on two slots: \(pids)") }
    for slot in resource.slots where held[slot.id] != nil && (!slot.allocated || slot.agentPid == 0) {
      problems.append("\(slot.id) is held but the daemon reports allocated=\(slot.allocated) pid=\(slot.agentPid)")
    }
    for slot in resource.slots where slot.hasHolder {
      let known = held[slot.id]
      if known?.pod != slot.holder.pod {
        // The daemon learns holders from pod-resources polls: a pod removed since the last
        // one may still be listed. Another *live* pod than the kubelet's is a double hand-out.
        if let known, known.pod != slot.holder.pod, held.values.contains(where: { $0.pod == slot.holder.pod }) {
          problems.append("\(slot.id): the kubelet gave it to \(known.pod), the daemon says \(slot.holder.pod)")
        }
      }
    }

    // Agent processes: one per slot at most, each one the daemon knows (no orphans), no zombies.
    let running = agentProcesses()
    for (slot, found) in running where found.count > 1 {
      problems.append("\(found.count) agents on \(slot): \(found)")
    }
    let known = Set(pids.map { Int32($0) })
    let orphans = running.values.joined().filter { !known.contains($0) }
    if !orphans.isEmpty { problems.append("agents the daemon does not know: \(orphans.sorted())") }
    let zombies = zombieChildren()
    if !zombies.isEmpty { problems.append("zombies: \(zombies)") }

    // ListAndWatch as the kubelet holds it: every device listed, the held ones healthy.
    let plugin = await kubelet.state.plugins[Self.resource]
    let listed = Set(plugin?.devices.map(\.id) ?? [])
    if listed != Set(slotIDs) { problems.append("ListAndWatch lists \(listed.sorted()), not \(slotIDs)") }
    if plugin?.streamOpen != true { problems.append("the ListAndWatch stream is not open") }
    for slot in held.keys where plugin?.devices.first(where: { $0.id == slot })?.health != "Healthy" {
      problems.append("\(slot) is held and running but ListAndWatch does not say Healthy")
    }

    // Files: nothing but the slot folders, their sockets and the status socket; the checkpoint parses.
    problems += strayFiles()
    if let data = FileManager.default.contents(atPath: root + "/state/checkpoint.json") {
      if (try? JSONDecoder().decode(Checkpoint.self, from: data)) == nil { problems.append("the checkpoint does not parse") }
    } else {
      problems.append("no checkpoint")
    }

    // Descriptors: bounded by what the daemon had after its start plus its agents'.
    if let daemon {
      let count = fdCount(daemon.pid)
      report.maxDaemonFDs = max(report.maxDaemonFDs, count)
      if count > report.daemonFDBaseline + 3 * plan.slots + 16 {
        problems.append("the daemon holds \(count) descriptors (\(report.daemonFDBaseline) after start)")
      }
    }
    return problems
  }

  /// The daemon's own session probe (`CreateSession` + `DestroySession`) on the socket.
  func sessionWorks(_ socket: String) async -> Bool {
    (try? await AgentProbe(mode: .session, timeout: .milliseconds(300)).check(.unix(path: socket))) != nil
  }

  /// Zombies whose parent is the daemon or this process (which reaps re-parented agents).
  func zombieChildren() -> [Int32] {
    let parents: Set<Int32> = [getpid(), daemon?.pid ?? -1]
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap { entry -> Int32? in
      guard let pid = Int32(entry), let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
      else { return nil }
      let fields = stat[stat.index(after: close)...].split(separator: " ")
      guard fields.count > 2, fields[0] == "Z", let parent = Int32(fields[1]), parents.contains(parent) else { return nil }
      return pid
    }
  }

  func strayFiles() -> [String] {
    let fm = FileManager.default
    let run = root + "/run"
    var problems: [String] = []
    let top = Set((try? fm.contentsOfDirectory(atPath: run)) ?? [])
    if !top.isSubset(of: [Self.slug, "device-plugin.sock"]) { problems.append("unexpected in runDir: \(top.sorted())") }
    let folders = Set((try? fm.contentsOfDirectory(atPath: run + "/" + Self.slug)) ?? [])
    if !folders.isSubset(of: Set(slotIDs)) { problems.append("unexpected slot folders: \(folders.sorted())") }
    for folder in folders {
      // At most one allocation's folder per slot (the old one goes before the next is made),
      // holding nothing but the agent's socket.
      let slotFolder = run + "/\(Self.slug)/\(folder)"
      let allocations = (try? fm.contentsOfDirectory(atPath: slotFolder)) ?? []
      if allocations.count > 1 || !allocations.allSatisfy(EndpointLayout.isAllocation) {
        problems.append("unexpected in \(folder): \(allocations.sorted())")
      }
      for allocation in allocations {
        let inside = Set((try? fm.contentsOfDirectory(atPath: slotFolder + "/" + allocation)) ?? [])
        if !inside.isSubset(of: ["vaccel.sock"]) { problems.append("unexpected in \(folder)/\(allocation): \(inside.sorted())") }
      }
    }
    let state = Set((try? fm.contentsOfDirectory(atPath: root + "/state")) ?? [])
    if !state.isSubset(of: ["checkpoint.json", "checkpoint.json.tmp", "agents", "lock"]) { problems.append("unexpected in stateDir: \(state.sorted())") }
    return problems
  }

  func fdCount(_ pid: Int32) -> Int {
    ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []).count
  }
}

/// What a soak survived, and what it did not.
struct ChaosReport {
  var events: [String: Int] = [:]
  var admitted = 0
  var removed = 0
  var checks = 0
  var maxRecovery: Duration = .zero
  var maxRecoveryByEvent: [String: Duration] = [:]
  var elapsed: Duration = .zero
  var daemonFDBaseline = 0
  var maxDaemonFDs = 0
  var leftovers = 0
  var violations: [String] = []

  mutating func record(_ event: ChaosPlan.Event) { events["\(event)", default: 0] += 1 }
  func count(_ event: ChaosPlan.Event) -> Int { events["\(event)"] ?? 0 }

  var summary: String {
    var lines = [
      "chaos soak: \(String(format: "%.1f", Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)) s",
      "  pod admissions \(admitted), removals \(removed)",
      "  agent SIGKILLs \(count(.agentKill)), agent hangs \(count(.agentHang)), kubelet restarts \(count(.kubeletRestart)), daemon SIGKILLs \(count(.daemonKill)), pod-resources faults \(count(.podResourcesFault))",
      "  invariant checks \(checks), max recovery \(maxRecovery.formatted(.units(allowed: [.milliseconds], width: .narrow)))"
        + " (" + maxRecoveryByEvent.keys.sorted().map { "\($0) \(maxRecoveryByEvent[$0]!.formatted(.units(allowed: [.milliseconds], width: .narrow)))" }.joined(separator: ", ") + ")",
      "  daemon descriptors: \(maxDaemonFDs) at most (last start: \(daemonFDBaseline)); agents left after shutdown: \(leftovers)",
      "  violations: \(violations.count)",
    ]
    lines += violations.prefix(20).map { "    \($0)" }
    return lines.joined(separator: "\n")
  }
}
