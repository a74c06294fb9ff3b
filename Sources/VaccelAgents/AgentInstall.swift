#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
public import VaccelConfig

/// The node's vAccel install as one resource's agents need it: the binary found and
/// executable, every configured plugin library present. Checked before agents start and
/// again every `nodeCheckInterval`, so a node that gets fixed recovers by itself.
public struct AgentInstall: Sendable, Equatable {
  public var executable: String

  public static let binaryFolders = ["/usr/local/bin", "/usr/bin"]
  public static let libraryFolders = ["/usr/local/lib", "/usr/lib", "/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu"]

  /// The reason the node cannot run these agents, or the install when it can.
  public static func check(_ agent: AgentConfig, path: String?) -> Result<AgentInstall, AgentError> {
    guard let executable = resolveBinary(agent.binary, path: path) else {
      if agent.binary.utf8.contains(UInt8(ascii: "/")) {
        return .failure(.nodeCheck("agent binary '\(agent.binary)' does not exist"))
      }
      return .failure(.nodeCheck("agent binary '\(agent.binary)' not found on PATH or in \(binaryFolders.joined(separator: ", "))"))
    }
    guard FileManager.default.isExecutableFile(atPath: executable) else {
      return .failure(.nodeCheck("agent binary '\(executable)' is not executable"))
    }
    let folders = (agent.libraryPath ?? "").split(separator: ":").map(String.init) + libraryFolders
    for plugin in agent.plugins {
      let candidates = plugin.hasPrefix("/") ? [plugin] : folders.map { "\($0)/\(plugin)" }
      guard candidates.contains(where: { FileManager.default.isReadableFile(atPath: $0) }) else {
        return .failure(.nodeCheck("vAccel plugin '\(plugin)' not found in \(plugin.hasPrefix("/") ? plugin : folders.joined(separator: ", "))"))
      }
    }
    return .success(AgentInstall(executable: executable))
  }

  static func resolveBinary(_ binary: String, path: String?) -> String? {
    if binary.utf8.contains(UInt8(ascii: "/")) {
      return FileManager.default.fileExists(atPath: binary) ? binary : nil
    }
    let folders = (path ?? "").split(separator: ":").map(String.init) + binaryFolders
    return folders.map { "\($0)/\(binary)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
  }
}

/// Why an agent is not there for its slot.
public enum AgentError: Error, Equatable, Sendable, CustomStringConvertible {
  /// The node cannot run agents for this resource (binary or plugins missing).
  case nodeCheck(String)
  case launch(String)
  case exited(String)
  case notReady(String)

  public var description: String {
    switch self {
    case .nodeCheck(let why), .launch(let why), .exited(let why), .notReady(let why): why
    }
  }
}
