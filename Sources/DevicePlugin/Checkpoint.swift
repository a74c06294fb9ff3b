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
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    let data: Data
    do {
      data = try encoder.encode(checkpoint)
    } catch {
      throw .io(path: path, reason: "cannot encode: \(error)")
    }
    do {
      try AtomicFile.write(Array(data), to: path, mode: 0o600)
    } catch {
      throw .io(path: error.path, reason: "\(error.operation): \(String(cString: strerror(error.errno)))")
    }
  }
}
