import Foundation
public import StatusAPI
import Yams

public enum OutputFormat: String, Sendable, CaseIterable {
  case table, wide, json, yaml
}

/// Renders a status answer the way kubectl renders objects: aligned columns with `<none>` for
/// blanks, `-o wide` for more columns, `-o json|yaml` for machines (`StatusDocument`, versioned).
public enum StatusFormat {
  public static func render(_ status: Vaccel_Deviceplugin_Status_V1_GetStatusResponse, as format: OutputFormat) throws(CtlError) -> String {
    switch format {
    case .table: return table(status, wide: false)
    case .wide: return table(status, wide: true)
    case .json: return try json(status)
    case .yaml: return try yaml(status)
    }
  }

  static func json(_ status: Vaccel_Deviceplugin_Status_V1_GetStatusResponse) throws(CtlError) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    do {
      return String(decoding: try encoder.encode(StatusDocument(status)), as: UTF8.self) + "\n"
    } catch {
      throw .failed("cannot encode the status as JSON: \(error)")
    }
  }

  static func yaml(_ status: Vaccel_Deviceplugin_Status_V1_GetStatusResponse) throws(CtlError) -> String {
    do {
      // JSON is YAML: compose keeps the key order; restyled plain and block, it reads as YAML.
      guard let node = try Yams.compose(yaml: try json(status)) else { return "" }
      return try Yams.serialize(node: plain(node))
    } catch let error as CtlError {
      throw error
    } catch {
      throw .failed("cannot encode the status as YAML: \(error)")
    }
  }

  /// The node with JSON's quoting and flow style dropped (the emitter quotes what needs it).
  static func plain(_ node: Node) -> Node {
    switch node {
    case .scalar(let scalar):
      return .scalar(Node.Scalar(scalar.string, scalar.tag, .any))
    case .mapping(let mapping):
      return .mapping(Node.Mapping(mapping.map { (plain($0.key), plain($0.value)) }, mapping.tag, .block))
    case .sequence(let sequence):
      return .sequence(Node.Sequence(sequence.map(plain), sequence.tag, .block))
    case .alias:
      return node
    }
  }

  public static func table(_ status: Vaccel_Deviceplugin_Status_V1_GetStatusResponse, wide: Bool) -> String {
    let now = status.nowUnixMs
    var resources = Table(
      headers: ["RESOURCE", "REGISTRATION", "SINCE", "SLOTS", "HEALTHY", "ALLOCATED", "AGENTS-READY"]
        + (wide ? ["TRANSPORT", "AGENTS", "REGISTRATIONS", "LAST-ERROR"] : []))
    for resource in status.resources {
      resources.add(
        [
          resource.name, resource.registration.word, age(since: resource.registrationSinceUnixMs, now: now),
          "\(resource.slotsTotal)", "\(resource.slotsHealthy)", "\(resource.slotsAllocated)", "\(resource.agentsReady)",
        ] + (wide
          ? [resource.transport, resource.agents, "\(resource.registrations)", resource.registrationError]
          : []))
    }
    // The default table fits 120 columns: the endpoint is in -o wide, and the last error, with
    // its age, gets what the other columns leave.
    var slots = Table(
      headers: (wide ? ["RESOURCE"] : []) + ["SLOT", "STATE", "HOLDER", "PID", "RESTARTS", "UPTIME"]
        + (wide ? ["ENDPOINT", "AGENT", "ALLOCATIONS", "SANDBOX"] : []) + ["LAST-ERROR"])
    for resource in status.resources {
      for slot in resource.slots {
        let holder = slot.hasHolder
          ? "\(slot.holder.namespace)/\(slot.holder.pod) (\(slot.holder.container))"
          : (slot.allocated ? "(pending)" : "")
        // The unhealthy reason is the last error in almost every case: said once.
        var error = slot.lastError.isEmpty ? slot.unhealthyReason : slot.lastError
        if !error.isEmpty, slot.lastErrorUnixMs > 0 { error = "\(age(since: slot.lastErrorUnixMs, now: now)) ago: " + error }
        if wide, !slot.unhealthyReason.isEmpty, !slot.unhealthyReason.hasSuffix(slot.lastError) {
          error += " (unhealthy: \(slot.unhealthyReason))"
        }
        slots.add(
          (wide ? [resource.name] : []) + [
            slot.id, slot.state.word, holder, slot.agentPid > 0 ? "\(slot.agentPid)" : "",
            "\(slot.restarts)", slot.agentPid > 0 ? age(since: slot.agentStartedUnixMs, now: now) : "",
          ] + (wide ? [slot.endpoint, slot.agentPhase, "\(slot.allocations)", slot.sandboxID] : []) + [error])
      }
    }
    if !wide { slots.fit(within: maxWidth, clipping: [(index: 6, minimum: 24), (index: 2, minimum: 24)]) }
    let daemon = status.daemon
    let header = "Node \(daemon.nodeName.isEmpty ? "<unknown>" : daemon.nodeName): vaccel-device-plugin \(daemon.version), "
      + "pid \(daemon.pid), up \(age(since: daemon.startedUnixMs, now: now))\n\n"
    return header + resources.rendered() + "\n" + slots.rendered()
  }

  /// The default table's width: a terminal's, with room to spare.
  static let maxWidth = 120

  /// kubectl's `HumanDuration`: 45s, 3m12s, 42m, 5h30m, 17h, 3d, 400d.
  static func age(since: Int64, now: Int64) -> String {
    guard since > 0 else { return "" }
    let seconds = max(0, (now - since) / 1000)
    switch seconds {
    case ..<120: return "\(seconds)s"
    case ..<600: return seconds % 60 == 0 ? "\(seconds / 60)m" : "\(seconds / 60)m\(seconds % 60)s"
    case ..<(3 * 3600): return "\(seconds / 60)m"
    case ..<(8 * 3600):
      let minutes = (seconds / 60) % 60
      return minutes == 0 ? "\(seconds / 3600)h" : "\(seconds / 3600)h\(minutes)m"
    case ..<(48 * 3600): return "\(seconds / 3600)h"
    default: return "\(seconds / 86400)d"
    }
  }
}

/// Left-aligned columns separated by three spaces, blanks as `<none>`, as kubectl prints.
struct Table {
  let headers: [String]
  private var rows: [[String]] = []

  init(headers: [String]) { self.headers = headers }

  mutating func add(_ row: [String]) { rows.append(row.map { $0.isEmpty ? "<none>" : Self.oneLine($0) }) }

  /// Clips columns (a clipped cell ends with "…") until no line is wider than `width`: the
  /// first of `columns` down to its minimum, then the next. Headers are never clipped.
  mutating func fit(within width: Int, clipping columns: [(index: Int, minimum: Int)]) {
    var widths = headers.map(\.count)
    for row in rows {
      for (column, cell) in row.enumerated() { widths[column] = max(widths[column], cell.count) }
    }
    var excess = widths.reduce(0, +) + 3 * (widths.count - 1) - width
    for (column, minimum) in columns where excess > 0 {
      let floor = max(minimum, headers[column].count)
      let target = max(floor, widths[column] - excess)
      guard target < widths[column] else { continue }
      excess -= widths[column] - target
      widths[column] = target
      for index in rows.indices where rows[index][column].count > target {
        rows[index][column] = String(rows[index][column].prefix(target - 1)) + "…"
      }
    }
  }

  func rendered() -> String {
    var widths = headers.map(\.count)
    for row in rows {
      for (column, cell) in row.enumerated() { widths[column] = max(widths[column], cell.count) }
    }
    var out = ""
    for row in [headers] + rows {
      var line = ""
      for (column, cell) in row.enumerated() {
        line += column == row.count - 1 ? cell : cell.padding(toLength: widths[column] + 3, withPad: " ", startingAt: 0)
      }
      out += line + "\n"
    }
    return out
  }

  /// A cell never breaks the table: control characters (a newline in an error) become spaces.
  static func oneLine(_ text: String) -> String {
    String(text.unicodeScalars.map { CharacterSet.controlCharacters.contains($0) ? " " : Character($0) })
  }
}

extension Vaccel_Deviceplugin_Status_V1_RegistrationState {
  var word: String {
    switch self {
    case .starting: "Starting"
    case .waitingForKubelet: "WaitingForKubelet"
    case .registered: "Registered"
    case .retrying: "Retrying"
    case .stopped: "Stopped"
    case .unspecified, .UNRECOGNIZED: "Unknown"
    }
  }
}

extension Vaccel_Deviceplugin_Status_V1_SlotState {
  var word: String {
    switch self {
    case .free: "free"
    case .starting: "starting"
    case .ready: "ready"
    case .allocated: "allocated"
    case .crashLooping: "crash-looping"
    case .unhealthy: "unhealthy"
    case .unspecified, .UNRECOGNIZED: "unknown"
    }
  }
}
