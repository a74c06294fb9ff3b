#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import NodeSupport

/// What must survive a daemon restart, per slot: who holds it, and which agent serves it.
public struct Checkpoint: Codable, Sendable, Equatable {
  public static let currentVersion = 1

  public struct Slot: Codable, Sendable, Equatable {
    public var id: String
    public var allocated: Bool
    public var holder: Holder?
    public var generation: Int
    /// The agent's pid, for operators: recovery finds agents by their listen address.
    public var pid: Int32?
    /// Where the slot's agent listens on the host (or, without agents, what the pod dials).
    public var endpoint: String
  }

  public var version = Checkpoint.currentVersion
  /// resource name → slots.
  public var resources: [String: [Slot]] = [:]

  public init(resources: [String: [Slot]] = [:]) {
    self.resources = resources
  }
}

public enum CheckpointError: Error, CustomStringConvertible {
  case corrupt(path: String, reason: String)
  case io(path: String, reason: String)

  public var description: String {
    switch self {
    case .corrupt(let path, let reason): "checkpoint \(path) is corrupt (\(reason))"
    case .io(let path, let reason): "checkpoint \(path): \(reason)"
    }
  }
}

/// The checkpoint file: written atomically (temp file, fsync, rename, fsync of the folder),
/// so a crash or a full disk leaves either the old or the new file, never a torn one.
public struct CheckpointStore: Sendable {
  public let path: String

  public init(stateDir: String) {
    self.path = stateDir.hasSuffix("/") ? stateDir + "checkpoint.json" : stateDir + "/checkpoint.json"
  }

  /// nil when there is none yet.
  public func load() throws(CheckpointError) -> Checkpoint? {
    var info = stat()
    guard lstat(path, &info) == 0 else {
      if errno == ENOENT { return nil }
      throw .io(path: path, reason: String(cString: strerror(errno)))
    }
    guard info.st_mode & S_IFMT == S_IFREG else {
      throw .corrupt(path: path, reason: "not a regular file")
    }
    guard let data = FileManager.default.contents(atPath: path) else {
      throw .io(path: path, reason: "unreadable")
    }
    let checkpoint: Checkpoint
    do {
      checkpoint = try JSONDecoder().decode(Checkpoint.self, from: data)
    } catch {
      throw .corrupt(path: path, reason: "\(error)")
    }
    guard checkpoint.version == Checkpoint.currentVersion else {
      throw .corrupt(path: path, reason: "version \(checkpoint.version), expected \(Checkpoint.currentVersion)")
    }
    return checkpoint
  }

  /// Moves a corrupt checkpoint aside (kept for a post-mortem) so a new one can be written.
  public func setAside() -> String {
    let aside = path + ".corrupt"
    rename(path, aside)
    return aside
  }

  public func save(_ checkpoint: Checkpoint) throws(CheckpointError) {
    do {
      try AtomicFile.write(checkpoint.json(), to: path, mode: 0o600)
    } catch {
      throw .io(path: error.path, reason: "\(error.operation): \(String(cString: strerror(error.errno)))")
    }
  }
}

extension Checkpoint {
  /// The checkpoint as JSON, byte for byte what `JSONEncoder` writes with `.sortedKeys` and
  /// `.withoutEscapingSlashes` (absent fields left out), read back by `JSONDecoder`. Written
  /// directly: `JSONEncoder` first builds a dictionary per slot, 0.7 MiB at the peak at 1,024
  /// slots, and the daemon kept those pages resident after every write.
  func json() -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(64 + resources.values.reduce(0) { $0 + $1.count * 192 })
    out += #"{"resources":{"#.utf8
    for (index, (name, slots)) in resources.sorted(by: { $0.key < $1.key }).enumerated() {
      if index > 0 { out.append(UInt8(ascii: ",")) }
      Self.append(string: name, to: &out)
      out += ":[".utf8
      for (index, slot) in slots.enumerated() {
        if index > 0 { out.append(UInt8(ascii: ",")) }
        out += #"{"allocated":\#(slot.allocated),"endpoint":"#.utf8
        Self.append(string: slot.endpoint, to: &out)
        out += #","generation":\#(slot.generation)"#.utf8
        if let holder = slot.holder {
          out += #","holder":{"container":"#.utf8
          Self.append(string: holder.container, to: &out)
          out += #","namespace":"#.utf8
          Self.append(string: holder.namespace, to: &out)
          out += #","pod":"#.utf8
          Self.append(string: holder.pod, to: &out)
          out.append(UInt8(ascii: "}"))
        }
        out += #","id":"#.utf8
        Self.append(string: slot.id, to: &out)
        if let pid = slot.pid { out += #","pid":\#(pid)"#.utf8 }
        out.append(UInt8(ascii: "}"))
      }
      out.append(UInt8(ascii: "]"))
    }
    out += #"},"version":\#(version)}"#.utf8
    return out
  }

  private static let hexDigits = Array("0123456789abcdef".utf8)

  /// A JSON string: quotes, backslashes and control characters escaped, the rest as UTF-8.
  static func append(string: String, to out: inout [UInt8]) {
    out.append(UInt8(ascii: "\""))
    for byte in string.utf8 {
      switch byte {
      case UInt8(ascii: "\""), UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), byte]
      case UInt8(ascii: "\n"): out += #"\n"#.utf8
      case UInt8(ascii: "\r"): out += #"\r"#.utf8
      case UInt8(ascii: "\t"): out += #"\t"#.utf8
      case 0x08: out += #"\b"#.utf8
      case 0x0C: out += #"\f"#.utf8
      case 0..<0x20: out += #"\u00"#.utf8 + [hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0xF)]]
      default: out.append(byte)
      }
    }
    out.append(UInt8(ascii: "\""))
  }
}
