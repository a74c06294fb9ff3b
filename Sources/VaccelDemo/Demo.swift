import DevicePlugin
import Foundation
import GRPCCore
import KubeletAPI
import KubeletEmulation
import Logging
import VaccelAgentAPI
import VaccelAgents
import VaccelConfig
import VaccelRPC
import UnixSignals
public import VaccelCtlKit

/// `vaccelctl demo` (run as `vaccel-demo`, so that vaccelctl links no daemon): the real daemon
/// (in this process) against a kubelet emulation over real
/// unix sockets in a temp folder. Admits pods, starts their agents, makes a vAccel session
/// round trip through each pod's endpoint, frees one and shows its slot recycled, cleans up.
public struct Demo: Sendable {
  public struct Report: Sendable {
    /// The temp folder it ran in (removed at the end unless kept).
    public var folder = ""
    /// Session ids created through each pod's endpoint, by pod name.
    public var sessions: [String: Int64] = [:]
    public var pidBefore: Int32?
    public var pidAfter: Int32?
    /// The agent the next pod got on the recycled slot.
    public var pidNext: Int32?
  }

  public static let resource = "vaccel.org/accel"
  public var pods = 3
  public var slots = 4
  /// nil: `vaccel-rpc-agent` on PATH, else the stand-in next to this executable.
  public var agentBinary: String?
  public var standinBinary: String
  public var keepFolder = false
  let print: @Sendable (String) -> Void

  public init(standinBinary: String, agentBinary: String? = nil, print: @escaping @Sendable (String) -> Void) {
    self.standinBinary = standinBinary
    self.agentBinary = agentBinary
    self.print = print
  }

  /// The real agent when it is on PATH, else the stand-in.
  public static func pickAgent(searchPath: String?, standin: String) -> (binary: String, standin: Bool) {
    for folder in (searchPath ?? "").split(separator: ":").map(String.init) + ["/usr/local/bin", "/usr/bin"] {
      let candidate = "\(folder)/vaccel-rpc-agent"
      if FileManager.default.isExecutableFile(atPath: candidate) { return (candidate, false) }
    }
    return (standin, true)
  }

  public func run() async throws(CtlError) -> Report {
    // A given agent is the real one only by its name: anything else gets no vAccel plugin.
    let picked = agentBinary.map { ($0, ($0 as NSString).lastPathComponent != "vaccel-rpc-agent") }
      ?? Self.pickAgent(searchPath: ProcessInfo.processInfo.environment["PATH"], standin: standinBinary)
    guard FileManager.default.isExecutableFile(atPath: picked.0) else {
      let missing = FileManager.default.fileExists(atPath: picked.0) ? "is not executable" : "does not exist"
      throw .failed(
        agentBinary == nil
          ? "the stand-in agent \(picked.0) \(missing): build it first with `swift build`"
          : "--agent \(picked.0) \(missing)")
    }
    // Fail now, with the node check's own words, rather than wait for devices that stay
    // Unhealthy: found, then started once as the daemon starts it (doctor's trial).
    let agentConfig = Self.agentConfig(binary: picked.0, standin: picked.1)
    do {
      let install = try AgentInstall.check(agentConfig, path: nil).get()
      _ = try await AgentTrial.run(install, agent: agentConfig, timeout: agentConfig.readyTimeout)
    } catch {
      throw .failed("the demo cannot run the agent \(picked.0): \(error)")
    }
    var report = Report()
    print(picked.1
      ? "agent: \(picked.0) (the stand-in: vaccel-rpc-agent is not on PATH)"
      : "agent: \(picked.0) (the real vaccel-rpc-agent, noop plugin)")

    var template = "/tmp/vaccel-demo-XXXXXX".utf8CString
    guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
      throw .failed("cannot create a temp folder: \(String(cString: strerror(errno)))")
    }
    let root = String(cString: made)
    report.folder = root
    defer { if !keepFolder { try? FileManager.default.removeItem(atPath: root) } }
    print("folder: \(root) (kubelet sockets, slot folders, state; removed at the end)")

    do {
      try await run(in: root, agent: picked.0, standin: picked.1, report: &report)
    } catch let error as CtlError {
      throw error
    } catch {
      throw .failed("the demo failed: \(error)")
    }
    return report
  }

  private func run(in root: String, agent: String, standin: Bool, report: inout Report) async throws {
    let kubelet = KubeletEmulator(directory: root + "/device-plugins")
    try await kubelet.start()
    let podResources = PodResourcesEmulator(socketPath: root + "/pod-resources.sock")
    try await podResources.start()

    let agentConfig = Self.agentConfig(binary: agent, standin: standin)
    let config = DaemonConfig(
      kubelet: KubeletConfig(
        devicePluginDir: root + "/device-plugins", podResourcesSocket: root + "/pod-resources.sock",
        // The emulation lists a holder right after Allocate returns, as the kubelet does; the
        // grace covers that gap (with none, a poll in between would free the slot at once).
        recheckInterval: .seconds(5), podResourcesInterval: .seconds(1), allocationGrace: .seconds(2)),
      runDir: root + "/run", stateDir: root + "/state", logLevel: .warning, metricsAddress: "",
      agent: agentConfig,
      resources: [ResourceConfig(name: Self.resource, slots: slots, warm: 1, agent: agentConfig)])
    var logger = Logger(label: "vaccel-demo")
    logger.logLevel = .warning
    let daemon = try NodeDaemon(config: config, logger: logger, podResources: GRPCPodResourcesClient(socketPath: config.kubelet.podResourcesSocket))
    // Ctrl-C (or SIGTERM) is the demo's to handle: it stops what it started and says so.
    let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
    let running = Task { try await daemon.run(gracefulShutdownSignals: []) }

    do {
      report = try await withThrowingTaskGroup(of: Report?.self) { group in
        group.addTask { [report] in
          var report = report
          try await admitAndShow(kubelet: kubelet, podResources: podResources, daemon: daemon, config: config, report: &report)
          return report
        }
        group.addTask {
          for await _ in signals { return nil }
          try await Task.sleep(for: .seconds(1 << 40))
          return nil
        }
        defer { group.cancelAll() }
        guard let finished = try await group.next(), let done = finished else { throw CtlError.interrupted }
        return done
      }
    } catch CtlError.interrupted {
      running.cancel()
      _ = await running.result
      await kubelet.stop()
      await podResources.stop()
      print("\ninterrupted: the daemon stopped its agents; the demo's folder is removed")
      throw CtlError.interrupted
    } catch {
      // What the kubelet saw says most about a failed call (a re-registration replaces the
      // connection the call was on).
      let seen = await kubelet.state
      running.cancel()
      _ = await running.result
      await kubelet.stop()
      await podResources.stop()
      throw CtlError.failed(
        "\(error) (the kubelet emulation saw \(seen.registrations) registrations; "
          + "stream open: \(seen.plugins[Self.resource]?.streamOpen ?? false))")
    }
    running.cancel()
    if case .failure(let error) = await running.result { throw error }
    await kubelet.stop()
    await podResources.stop()
    print("\ncleaned up: daemon stopped, its agents stopped, sockets and folders removed")
  }

  private func admitAndShow(
    kubelet: KubeletEmulator, podResources: PodResourcesEmulator, daemon: NodeDaemon, config: DaemonConfig,
    report: inout Report
  ) async throws {
    let resource = Self.resource
    let slots = self.slots
    _ = try await kubelet.wait(for: "\(resource) registered with \(slots) healthy devices") { $0.healthy(resource) == slots }
    print("registered: the kubelet emulation lists \(slots) healthy \(resource) devices\n")

    guard let manager = daemon.managers.first else { throw CtlError.failed("the daemon has no resource") }
    var holders: [String: PodContainer] = [:]
    var allocations: [(pod: String, id: String, response: V1beta1_ContainerAllocateResponse)] = []
    for number in 1...pods {
      let pod = "demo-\(number)"
      let (id, container) = try await admit(pod, kubelet: kubelet, manager: manager)
      holders[id] = PodContainer(namespace: "default", pod: pod, container: "app")
      podResources.update(resource, holders)
      allocations.append((pod, id, container))
    }

    print("what each pod received (Allocate), and a vAccel session through its own endpoint:")
    for (pod, id, container) in allocations {
      let env = container.envs.keys.sorted().map { "\($0)=\(container.envs[$0]!)" }.joined(separator: " ")
      let mounts = container.mounts.map { "\($0.hostPath) -> \($0.containerPath)" }.joined(separator: ", ")
      let sessionID = try await Self.session(through: container)
      report.sessions[pod] = sessionID
      print("  \(pod) got \(id): \(env)")
      print("    mount \(mounts.isEmpty ? "none" : mounts); CreateSession -> session \(sessionID), DestroySession ok")
    }

    // The kubelet records an allocation only after Allocate returns; the daemon learns the
    // holder from its next pod-resources poll.
    for (_, id, _) in allocations {
      _ = try await manager.waitForSlot(id, timeout: .seconds(10)) { $0.holder != nil }
    }
    let statusClient = StatusClient(socketPath: config.statusSocket)
    print("\nvaccelctl status --socket \(config.statusSocket)\n")
    print(StatusFormat.table(try await statusClient.fetch(), wide: false))

    // Free the second pod: pod-resources stops listing it, the daemon recycles its slot.
    let (freedPod, freedID, _) = allocations[min(1, allocations.count - 1)]
    let before = await manager.slotStates.first { $0.id == freedID }?.agent.pid
    holders.removeValue(forKey: freedID)
    podResources.update(resource, holders)
    print("pod \(freedPod) deleted: waiting for slot \(freedID) to be recycled (old agent pid \(before.map(String.init) ?? "none"))")
    let after = try await manager.waitForSlot(freedID, timeout: .seconds(20)) { state in
      !state.allocated && state.agent.pid != before && state.agent.phase != .stopping
    }
    report.pidBefore = before
    report.pidAfter = after.agent.pid
    print("slot \(freedID) is free again; its agent was stopped and its allocation's folder removed"
      + (after.agent.pid.map { "; a fresh agent (pid \($0)) keeps it warm for the next pod" } ?? ""))

    // The next pod gets the recycled slot: a new folder, and an agent that never served demo-2.
    let nextPod = "demo-\(pods + 1)"
    let next = try await kubelet.admit(resource, [[freedID]])
    guard let container = next.containerResponses.first else { throw CtlError.failed("Allocate returned no container for \(nextPod)") }
    holders[freedID] = PodContainer(namespace: "default", pod: nextPod, container: "app")
    podResources.update(resource, holders)
    let sessionID = try await Self.session(through: container)
    let served = await manager.slotStates.first { $0.id == freedID }?.agent.pid
    report.sessions[nextPod] = sessionID
    report.pidNext = served
    print("pod \(nextPod) got the recycled \(freedID): mount \(container.mounts.map(\.hostPath).joined(separator: ", ")); "
      + "its agent pid \(served.map(String.init) ?? "none") (never served \(freedPod)); CreateSession -> session \(sessionID)\n")
    _ = try await manager.waitForSlot(freedID, timeout: .seconds(10)) { $0.holder?.pod == nextPod }
    print(StatusFormat.table(try await statusClient.fetch(), wide: false))
  }

  /// What the kubelet does to admit a pod: GetPreferredAllocation, then Allocate, and
  /// PreStartContainer before the container starts (where the pod's agent is waited for). When the
  /// plugin's connection is replaced under the call (the daemon re-registered: on a loaded
  /// machine its first Register can time out after the kubelet accepted it), the kubelet fails
  /// the admission and tries again; so does the demo, up to three times.
  private func admit(
    _ pod: String, kubelet: KubeletEmulator, manager: DeviceManager
  ) async throws -> (String, V1beta1_ContainerAllocateResponse) {
    let resource = Self.resource
    for attempt in 1...3 {
      do {
        let free = await manager.slotStates.filter { !$0.allocated && $0.healthy }.map(\.id)
        let preferred = try await kubelet.client(resource).getPreferredAllocation(.with {
          $0.containerRequests = [.with { $0.availableDeviceIds = free; $0.allocationSize = 1 }]
        })
        guard let id = preferred.containerResponses.first?.deviceIds.first else {
          throw CtlError.failed("GetPreferredAllocation proposed nothing for \(pod)")
        }
        let response = try await kubelet.admit(resource, [[id]])  // Allocate, then PreStartContainer
        guard let container = response.containerResponses.first else {
          throw CtlError.failed("Allocate returned no container for \(pod)")
        }
        return (id, container)
      } catch let error as RPCError where error.code == .unavailable && attempt < 3 {
        print("admitting \(pod) failed (\(error.message)); the kubelet tries again")
      }
    }
    throw CtlError.failed("\(pod) could not be admitted")
  }

  /// The real agent runs with vAccel's noop plugin; the stand-in needs none.
  static func agentConfig(binary: String, standin: Bool) -> AgentConfig {
    var agent = AgentConfig()
    agent.binary = binary
    agent.plugins = standin ? [] : ["libvaccel-noop.so"]
    return agent
  }

  /// CreateSession and DestroySession on the agent behind `container`'s endpoint, dialled the
  /// way the pod would (its mount resolved to the host folder).
  static func session(through container: V1beta1_ContainerAllocateResponse) async throws -> Int64 {
    guard let text = container.envs["VACCEL_RPC_ADDRESS"] else { throw CtlError.failed("no VACCEL_RPC_ADDRESS in the allocation") }
    var address = try AgentAddress(parsing: text)
    if case .unix(let path) = address, let mount = container.mounts.first(where: { path.hasPrefix($0.containerPath + "/") }) {
      address = .unix(path: mount.hostPath + path.dropFirst(mount.containerPath.count))
    }
    return try await AgentProbe.sessionRoundTrip(address, timeout: .seconds(5))
  }
}
