#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// One agent's log file in the state folder: the agent appends to it directly (so an agent
/// outlives a daemon restart without a broken pipe), the daemon tails it into its own log and
/// keeps it near `maxBytes` (the older half goes to `<file>.1`).
final class AgentLog: @unchecked Sendable {
  let path: String
  let maxBytes: Int
  private var offset: off_t = 0
  private var partial = Data()

  init(path: String, maxBytes: Int) {
    self.path = path
    self.maxBytes = maxBytes
  }

  /// New complete lines since the last call. Used from the owning actor only.
  func readNewLines() -> [String] {
    let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
    guard fd >= 0 else { return [] }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0 else { return [] }
    if info.st_size < offset {
      offset = 0  // truncated by us or someone else
      partial.removeAll()
    }
    var lines: [String] = []
    var buffer = [UInt8](repeating: 0, count: 64 * 1024)
    while true {
      let count = pread(fd, &buffer, buffer.count, offset)
      guard count > 0 else { break }
      offset += off_t(count)
      partial.append(contentsOf: buffer[0..<count])
      while let newline = partial.firstIndex(of: 0x0A) {
        lines.append(String(decoding: partial[partial.startIndex..<newline], as: UTF8.self))
        partial.removeSubrange(partial.startIndex...newline)
      }
      if partial.count > 16 * 1024 {  // a runaway line without newline
        lines.append(String(decoding: partial, as: UTF8.self))
        partial.removeAll()
      }
    }
    if info.st_size > maxBytes {
      cap()
    }
    return lines
  }

  /// Keeps the file bounded: the current content moves to `.1` and the file starts empty
  /// (the agent's O_APPEND writes continue at the new end).
  private func cap() {
    // A copy, not a link or rename: the agent's descriptor must keep pointing at `path`.
    let rotated = path + ".1"
    unlink(rotated)
    _ = try? FileManager.default.copyItem(atPath: path, toPath: rotated)
    truncate(path, 0)
    offset = 0
  }
}
