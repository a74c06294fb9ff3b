import DevicePlugin
import Foundation
import GRPCCore
import KubeletEmulation
import Logging
import VaccelAgentAPI
import VaccelAgents
import VaccelCtlKit
import VaccelRPC

/// One soak: runs the plan's events in order and checks the invariants after each.
final class ChaosRun {
  static let resource = "vaccel.org/accel"
  static let slug = "accel"
  /// Every held slot serves a session within this long after any step (issue 6).
  static let recoveryBound: Duration = .seconds(2)

  let plan: ChaosPlan
  let binaries: String
  let root: String
  let kubelet: KubeletEmulator
  let podResources: PodResourcesEmulator
  let monitor: ProcessMonitor
  var daemon: MonitoredProcess?
  var rng: SplitMix

  /// The kubelet's view: slot → the pod holding it.
  var held: [String: PodContainer] = [:]
  /// Slot → the agent socket its holder's Allocate reply mounted (its allocation's own folder).
  var sockets: [String: String] = [:]
  /// The agent pid that served each slot's last holder: the next holder must get another.
  var lastHolderPid: [String: Int64] = [:]
  var podNumber = 0
  var registrations = 0
  var report = ChaosReport()

  init(plan: ChaosPlan, binaries: String) throws {
    self.plan = plan
    self.binaries = binaries
    var template = Array("/tmp/vchaos.XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else { throw ChaosError("cannot create a temp folder") }
    root = String(cString: made)
    kubelet = KubeletEmulator(directory: root + "/dp")
    podResources = PodResourcesEmulator(socketPath: root + "/pr.sock")
    // Agents of a SIGKILLed daemon are re-parented here; this reaps them when they exit.
    monitor = try ProcessMonitor(reapOrphans: true, logger: Logger(label: "chaos", factory: { _ in SwiftLogNoOpLogHandler() }))
    rng = SplitMix(state: plan.seed ^ 0xC4A05)
  }

  var slotIDs: [String] { (0..<plan.slots).map { "\(Self.slug)-\($0)" } }
  /// The holder's socket; for a slot the daemon never allocated (the control), one that cannot exist.
  func socket(_ slot: String) -> String { sockets[slot] ?? root + "/run/\(Self.slug)/\(slot)/never-allocated/vaccel.sock" }

  /// Agent processes of this soak's daemon, by slot (found by their listen address).
  func agentProcesses() -> [String: [Int32]] {
    let prefix = "unix://" + root + "/run/\(Self.slug)/"
    var found: [String: [Int32]] = [:]
    for (pid, argument) in ProcessInfoReader.processes(withArgumentWhere: { $0.hasPrefix(prefix) }) {
      let slot = argument.dropFirst(prefix.count).split(separator: "/").first.map(String.init) ?? argument
      found[slot, default: []].append(pid)
    }
    return found
  }
  var statusSocket: String { root + "/run/device-plugin.sock" }

  func run() async throws -> ChaosReport {
    // VACCEL_CHAOS_KEEP=1 keeps the folder (the daemon's log is daemon.log) for a post-mortem.
    defer {
      if ProcessInfo.processInfo.environment["VACCEL_CHAOS_KEEP"] == "1" {
        print("kept: \(root)")
      } else {
        try? FileManager.default.removeItem(atPath: root)
      }
    }
    try writeConfig()
    try await kubelet.start()
    try await podResources.start()
    try await startDaemon()
    let started = ContinuousClock.now
    for (step, event) in plan.events().enumerated() {
      switch event {
      case .admit: try await admit()
      case .agentKill: try await killAgent(signal: SIGKILL)
      case .agentHang: try await killAgent(signal: SIGSTOP)
      case .kubeletRestart: try await restartKubelet()
      case .daemonKill: try await killDaemon(duringCheckpoint: report.count(.daemonKill) % 2 == 0)
      case .podResourcesFault: try await podResourcesFault()
      }
      // Pods come and go: about as many removals as admissions, never all slots idle.
      if !held.isEmpty, held.count >= plan.slots - 1 || Bool.random(using: &rng) { removeRandomPod() }
      report.record(event)
      // Recovery is timed from the end of the step (a pod-resources fault lasts a poll).
      let recovered = await settle(step: step, event: event, since: .now)
      report.maxRecovery = max(report.maxRecovery, recovered)
      report.maxRecoveryByEvent["\(event)"] = max(report.maxRecoveryByEvent["\(event)"] ?? .zero, recovered)
      if report.violations.count > 20 { break }
    }
    if plan.control, let slot = slotIDs.first(where: { held[$0] == nil }) {
      // The checker's own control: a pod the kubelet view holds but the daemon never allocated
      // must show up as a violation.
      held[slot] = PodContainer(namespace: "chaos", pod: "phantom", container: "app")
      _ = await settle(step: -1, event: .admit, since: .now)
      held.removeValue(forKey: slot)
    }
    report.elapsed = ContinuousClock.now - started
    await stopDaemon()
    await kubelet.stop()
    await podResources.stop()
    report.leftovers = agentProcesses().values.joined().count
    if report.leftovers > 0 { report.violations.append("after shutdown: \(report.leftovers) agent processes still running") }
    monitor.shutdown()
    return report
  }

  // MARK: Events

  func admit() async throws {
    let free = slotIDs.filter { held[$0] == nil }
    guard let slot = free.randomElement(using: &rng) else { return }
    podNumber += 1
    let pod = PodContainer(namespace: "chaos", pod: "pod-\(podNumber)", container: "app")
    do {
      let reply = try await kubelet.admit(Self.resource, [[slot]])
      guard let folder = reply.containerResponses.first?.mounts.first?.hostPath else {
        report.violations.append("Allocate of \(slot) for \(pod.pod) mounted no folder")
        return
      }
      sockets[slot] = folder + "/vaccel.sock"
    } catch {
      report.violations.append("Allocate of \(slot) for \(pod.pod) failed: \(error)")
      return
    }
    held[slot] = pod
    podResources.update(Self.resource, held)
    report.admitted += 1
    // A new holder never inherits the previous holder's agent.
    if let status = try? await StatusClient(socketPath: statusSocket).fetch(),
      let state = status.resources.first?.slots.first(where: { $0.id == slot })
    {
      if let previous = lastHolderPid[slot], state.agentPid == previous {
        report.violations.append("\(slot): \(pod.pod) got the agent (pid \(previous)) of the slot's previous holder")
      }
      if state.agentPid > 0 { lastHolderPid[slot] = state.agentPid }
    }
  }

  func removeRandomPod() {
    guard let slot = held.keys.sorted().randomElement(using: &rng) else { return }
    held.removeValue(forKey: slot)
    sockets.removeValue(forKey: slot)
    podResources.update(Self.resource, held)
    report.removed += 1
  }

  /// SIGKILL: a crash. SIGSTOP: a hang (alive, accepting, silent) that only probing finds.
  func killAgent(signal: Int32) async throws {
    let pids = agentProcesses().values.joined()
    guard let pid = Array(pids).sorted().randomElement(using: &rng) else { return }
    kill(pid, signal)
  }

  func restartKubelet() async throws {
    try await kubelet.restart()
    try await waitForRegistration()
  }

  /// SIGKILL, then a new daemon. "During the checkpoint write": right after an allocation,
  /// inside the writer's 100 ms coalescing window.
  func killDaemon(duringCheckpoint: Bool) async throws {
    if duringCheckpoint {
      try await admit()
      try await Task.sleep(for: .milliseconds(Int.random(in: 0...120, using: &rng)))
    }
    guard let daemon else { return }
    _ = daemon.signal(SIGKILL)
    _ = await daemon.waitForExit()
    self.daemon = nil
    try await startDaemon()
  }

  /// pod-resources fails for a little over one poll: the daemon must keep every holder.
  func podResourcesFault() async throws {
    let error = Bool.random(using: &rng)
      ? RPCError(code: .resourceExhausted, message: "rate limited")
      : RPCError(code: .unavailable, message: "kubelet restarting")
    podResources.fail(with: error)
    try await Task.sleep(for: .milliseconds(1_200))  // the fault's length: one poll interval and some
    podResources.fail(with: nil)
  }

  // MARK: The daemon

  func writeConfig() throws {
    try """
      version: v1
      logLevel: \(ProcessInfo.processInfo.environment["VACCEL_CHAOS_LOG_LEVEL"] ?? "warning")
      kubelet:
        devicePluginDir: \(root)/dp
        podResourcesSocket: \(root)/pr.sock
        podResourcesInterval: 1s
        allocationGrace: 2s
      runDir: \(root)/run
      stateDir: \(root)/state
      metrics: {address: ""}
      agent:
        binary: \(binaries)/vaccel-standin-agent
        readyTimeout: 5s
        probeTimeout: 300ms
        liveness: {interval: 200ms, failures: 2}
        stopGracePeriod: 1s
        restartBackoff: {initial: 20ms, max: 200ms, resetAfter: 1s}
      resources:
        - name: \(Self.resource)
          slots: \(plan.slots)
          warm: 2
      """.write(toFile: root + "/config.yaml", atomically: true, encoding: .utf8)
  }

  func startDaemon() async throws {
    let spec = LaunchSpec(
      executable: binaries + "/vaccel-device-plugin", arguments: ["--config", root + "/config.yaml"],
      environment: ["PATH": "/usr/local/bin:/usr/bin:/bin"], logPath: root + "/daemon.log")
    daemon = try PosixLauncher(monitor: monitor).launch(spec)
    try await waitForRegistration()
    report.daemonFDBaseline = fdCount(daemon!.pid)
  }

  func stopDaemon() async {
    guard let daemon else { return }
    _ = daemon.signal(SIGTERM)
    _ = await daemon.waitForExit()
  }

  func waitForRegistration() async throws {
    let previous = registrations
    let resource = Self.resource
    let state = try await kubelet.wait(for: "registration", timeout: .seconds(10)) {
      $0.registrations > previous && $0.plugins[resource]?.streamOpen == true
    }
    registrations = state.registrations
  }
}

struct ChaosError: Error, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }
}
