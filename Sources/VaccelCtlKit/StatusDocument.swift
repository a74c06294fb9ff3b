import Foundation
import StatusAPI

/// What `vaccelctl status -o json|yaml` prints: a versioned document for scripts. Every field is
/// always there (`null` when it has no value), states use the table's words, times are RFC 3339
/// (UTC). The wire's proto3 JSON is not used: it leaves zero values out (slot 0's index) and
/// names states by their enum constants.
///
/// Version `vaccel.org/status/v1`: fields may be added; none is renamed, retyped or removed
/// within it. The README ("Status for scripts") lists them.
struct StatusDocument: Encodable {
  static let apiVersion = "vaccel.org/status/v1"

  var apiVersion = StatusDocument.apiVersion
  var kind = "NodeStatus"
  /// The daemon's clock when it answered.
  var time: Nullable<String>
  var daemon: Daemon
  var resources: [Resource]

  struct Daemon: Encodable {
    var version: String
    var pid: Int64
    var startedAt: Nullable<String>
    var node: String
    var devicePluginDir: String
    var runDir: String
    var stateDir: String
  }

  struct Registration: Encodable {
    var state: String
    var since: Nullable<String>
    var lastError: Nullable<String>
    var count: UInt32
  }

  struct Resource: Encodable {
    var name: String
    var registration: Registration
    var transport: String
    var agents: String
    var socket: String
    var slotsTotal: UInt32
    var slotsHealthy: UInt32
    var slotsAllocated: UInt32
    var agentsReady: UInt32
    var slots: [Slot]
  }

  struct Holder: Encodable {
    var namespace: String
    var pod: String
    var container: String
  }

  struct Agent: Encodable {
    var pid: Nullable<Int64>
    var phase: Nullable<String>
    var restarts: UInt32
    var startedAt: Nullable<String>
  }

  struct Sandbox: Encodable {
    var id: Nullable<String>
    var socket: String
  }

  struct Slot: Encodable {
    var id: String
    var index: UInt32
    var state: String
    var healthy: Bool
    var unhealthyReason: Nullable<String>
    var allocated: Bool
    var allocations: UInt64
    var holder: Nullable<Holder>
    var agent: Agent
    var endpoint: String
    var lastError: Nullable<String>
    var lastErrorAt: Nullable<String>
    var sandbox: Nullable<Sandbox>
  }

  init(_ status: Vaccel_Deviceplugin_Status_V1_GetStatusResponse) {
    time = Self.time(status.nowUnixMs)
    let daemon = status.daemon
    self.daemon = Daemon(
      version: daemon.version, pid: daemon.pid, startedAt: Self.time(daemon.startedUnixMs), node: daemon.nodeName,
      devicePluginDir: daemon.devicePluginDir, runDir: daemon.runDir, stateDir: daemon.stateDir)
    resources = status.resources.map { resource in
      Resource(
        name: resource.name,
        registration: Registration(
          state: resource.registration.word, since: Self.time(resource.registrationSinceUnixMs),
          lastError: Self.text(resource.registrationError), count: resource.registrations),
        transport: resource.transport, agents: resource.agents, socket: resource.socket,
        slotsTotal: resource.slotsTotal, slotsHealthy: resource.slotsHealthy, slotsAllocated: resource.slotsAllocated,
        agentsReady: resource.agentsReady,
        slots: resource.slots.map { slot in
          Slot(
            id: slot.id, index: slot.index, state: slot.state.word, healthy: slot.healthy,
            unhealthyReason: Self.text(slot.unhealthyReason), allocated: slot.allocated, allocations: slot.allocations,
            holder: Nullable(slot.hasHolder ? Holder(namespace: slot.holder.namespace, pod: slot.holder.pod, container: slot.holder.container) : nil),
            agent: Agent(
              pid: Nullable(slot.agentPid > 0 ? slot.agentPid : nil), phase: Self.text(slot.agentPhase), restarts: slot.restarts,
              startedAt: Self.time(slot.agentPid > 0 ? slot.agentStartedUnixMs : 0)),
            endpoint: slot.endpoint, lastError: Self.text(slot.lastError), lastErrorAt: Self.time(slot.lastErrorUnixMs),
            sandbox: Nullable(slot.sandboxSocket.isEmpty ? nil : Sandbox(id: Self.text(slot.sandboxID), socket: slot.sandboxSocket)))
        })
    }
  }

  /// Unix milliseconds as RFC 3339 in UTC with milliseconds; 0 (unknown) as null.
  static func time(_ unixMilliseconds: Int64) -> Nullable<String> {
    guard unixMilliseconds > 0 else { return Nullable(nil) }
    let date = Date(timeIntervalSince1970: Double(unixMilliseconds) / 1000)
    return Nullable(date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
  }

  static func text(_ value: String) -> Nullable<String> { Nullable(value.isEmpty ? nil : value) }
}

/// A value that is always encoded: `null` when absent (Codable leaves a nil optional out).
struct Nullable<Value: Encodable>: Encodable {
  var value: Value?

  init(_ value: Value?) { self.value = value }

  func encode(to encoder: any Encoder) throws {
    var container = encoder.singleValueContainer()
    if let value { try container.encode(value) } else { try container.encodeNil() }
  }
}
