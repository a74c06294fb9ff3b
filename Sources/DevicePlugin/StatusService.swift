#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import GRPCCore
import StatusAPI
import VaccelAgents
import VaccelConfig

typealias StatusV1 = Vaccel_Deviceplugin_Status_V1_Status

/// The read-only status API: what each resource's registration, slots and agents are doing
/// right now. One actor hop per resource; nothing here changes state.
struct StatusService: StatusV1.SimpleServiceProtocol {
  static let maxNamesPerRequest = 64

  let config: DaemonConfig
  let plugins: [ResourcePlugin]
  let startedAt: Date
  let nodeName: String

  func getStatus(
    request: Vaccel_Deviceplugin_Status_V1_GetStatusRequest, context: ServerContext
  ) async throws -> Vaccel_Deviceplugin_Status_V1_GetStatusResponse {
    let selected = try select(request.resources)
    var resources: [Vaccel_Deviceplugin_Status_V1_Resource] = []
    resources.reserveCapacity(selected.count)
    for plugin in selected {
      resources.append(Self.resource(plugin, snapshot: await plugin.manager.statusSnapshot()))
    }
    return .with {
      $0.daemon = .with {
        $0.version = BuildInfo.version
        $0.pid = Int64(getpid())
        $0.startedUnixMs = startedAt.unixMilliseconds
        $0.nodeName = nodeName
        $0.devicePluginDir = config.kubelet.devicePluginDir
        $0.runDir = config.runDir
        $0.stateDir = config.stateDir
      }
      $0.resources = resources
      $0.nowUnixMs = Date().unixMilliseconds
    }
  }

  /// How long a watch waits after a change before it answers: a burst (an admission changes a
  /// slot several times in a few ms) becomes one message. A rate limit, not a wait for anything.
  static let watchCoalescing: Duration = .milliseconds(100)

  func watchStatus(
    request: Vaccel_Deviceplugin_Status_V1_GetStatusRequest,
    response: RPCWriter<Vaccel_Deviceplugin_Status_V1_GetStatusResponse>, context: ServerContext
  ) async throws {
    let selected = try select(request.resources)
    let (ticks, tick) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    var slotChanges: [AsyncStream<Void>] = []
    for plugin in selected { slotChanges.append(await plugin.manager.changes()) }
    let registrationChanges = selected.map { $0.registration.changes() }
    try await withThrowingTaskGroup(of: Void.self) { group in
      for source in slotChanges {
        group.addTask {
          for await _ in source { tick.yield() }
          // A resource's slot changes end when the daemon stops: so does the watch.
          tick.finish()
        }
      }
      for source in registrationChanges {
        group.addTask { for await _ in source { tick.yield() } }
      }
      try await response.write(try await getStatus(request: request, context: context))
      for await _ in ticks {
        try await Task.sleep(for: Self.watchCoalescing)
        try await response.write(try await getStatus(request: request, context: context))
      }
      group.cancelAll()
    }
  }

  private func select(_ names: [String]) throws -> [ResourcePlugin] {
    guard !names.isEmpty else { return plugins }
    guard names.count <= Self.maxNamesPerRequest else {
      throw RPCError(code: .invalidArgument, message: "\(names.count) resource names; ask for at most \(Self.maxNamesPerRequest)")
    }
    return try names.map { name in
      guard let plugin = plugins.first(where: { $0.manager.resource.name == name }) else {
        let served = plugins.map(\.manager.resource.name).joined(separator: ", ")
        throw RPCError(code: .notFound, message: "no resource \(PluginError.quote(name)) on this node; it serves: \(served)")
      }
      return plugin
    }
  }

  static func resource(
    _ plugin: ResourcePlugin, snapshot: ResourceSnapshot
  ) -> Vaccel_Deviceplugin_Status_V1_Resource {
    let config = plugin.manager.resource
    let registration = plugin.registration.snapshot
    return .with {
      $0.name = config.name
      $0.registration = registration.state.wire
      $0.registrationSinceUnixMs = registration.since.unixMilliseconds
      $0.registrationError = registration.lastError ?? ""
      $0.registrations = UInt32(clamping: registration.registrations)
      $0.transport = config.transport.rawValue
      $0.agents = config.agents.rawValue
      $0.socket = plugin.socketPath
      $0.slotsTotal = UInt32(snapshot.slots.count)
      $0.slotsHealthy = UInt32(snapshot.healthy)
      $0.slotsAllocated = UInt32(snapshot.allocated)
      $0.agentsReady = UInt32(snapshot.agentsReady)
      $0.slots = snapshot.slots.enumerated().map { index, slot in
        Self.slot(slot, index: index, endpoint: snapshot.endpoints[index], managed: config.agents == .managed)
      }
    }
  }

  static func slot(_ slot: SlotState, index: Int, endpoint: String, managed: Bool) -> Vaccel_Deviceplugin_Status_V1_Slot {
    let agent = slot.agent
    return .with {
      $0.id = slot.id
      $0.index = UInt32(index)
      $0.state = slot.displayState(managed: managed)
      $0.healthy = slot.healthy
      $0.unhealthyReason = slot.unhealthyReason ?? ""
      $0.allocated = slot.allocated
      if let holder = slot.holder {
        $0.holder = .with {
          $0.namespace = holder.namespace
          $0.pod = holder.pod
          $0.container = holder.container
        }
      }
      $0.agentPid = Int64(agent.pid ?? 0)
      $0.agentPhase = managed ? agent.phase.rawValue : ""
      $0.restarts = UInt32(clamping: agent.restarts)
      $0.agentStartedUnixMs = agent.startedAt?.unixMilliseconds ?? 0
      $0.endpoint = endpoint
      $0.lastError = agent.lastError ?? ""
      $0.lastErrorUnixMs = agent.lastErrorAt?.unixMilliseconds ?? 0
      $0.allocations = UInt64(slot.allocations)
      $0.sandboxID = agent.sandboxID ?? ""
      $0.sandboxSocket = agent.sandboxSocket ?? ""
    }
  }
}

extension SlotState {
  /// The one word `vaccelctl status` shows: trouble first, then whether a pod holds it, then
  /// what its agent is doing.
  func displayState(managed: Bool) -> Vaccel_Deviceplugin_Status_V1_SlotState {
    if managed && agent.crashLooping { return .crashLooping }
    if !healthy { return .unhealthy }
    if allocated { return .allocated }
    guard managed else { return .free }
    switch agent.phase {
    case .starting: return .starting
    case .ready: return .ready
    default: return .free
    }
  }
}

extension RegistrationStatus.State {
  var wire: Vaccel_Deviceplugin_Status_V1_RegistrationState {
    switch self {
    case .starting: .starting
    case .waitingForKubelet: .waitingForKubelet
    case .registered: .registered
    case .retrying: .retrying
    case .stopped: .stopped
    }
  }
}

extension Date {
  var unixMilliseconds: Int64 { Int64((timeIntervalSince1970 * 1000).rounded()) }
}
