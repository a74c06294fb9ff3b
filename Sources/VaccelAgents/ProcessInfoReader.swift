#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// Reads what /proc says about processes: their state, and which ones run a given agent
/// (recognised by their exact listen address, so a reused pid is never mistaken for one).
public enum ProcessInfoReader {
  /// Single-letter state (R, S, D, Z, T…) from /proc/<pid>/stat.
  public static func state(of pid: Int32) -> Character? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
      let close = stat.lastIndex(of: ")")
    else { return nil }
    return stat[stat.index(after: close)...].split(separator: " ").first?.first
  }
}

extension ProcessInfoReader {
  /// Processes (other than us) whose command line has `argument` as one of its words: how
  /// agents left by a previous daemon are found even without a checkpoint.
  public static func processes(withArgument argument: String) -> [Int32] {
    processes(withArgumentWhere: { $0 == argument }).map(\.pid)
  }

  /// Every live process (other than us) and word of its command line that `matches`, in one
  /// pass over /proc with plain reads: recovery asks about every slot's agents at once, and a
  /// pass per slot was O(slots × processes).
  public static func processes(withArgumentWhere matches: (String) -> Bool) -> [(pid: Int32, argument: String)] {
    guard let proc = opendir("/proc") else { return [] }
    defer { closedir(proc) }
    let me = getpid()
    var found: [(pid: Int32, argument: String)] = []
    var buffer = [UInt8](repeating: 0, count: 8192)
    while let entry = readdir(proc) {
      let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
        String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
      }
      guard let pid = Int32(name), pid != me else { continue }
      let fd = open("/proc/\(pid)/cmdline", O_RDONLY | O_CLOEXEC)
      guard fd >= 0 else { continue }
      let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
      close(fd)
      guard count > 0 else { continue }
      for word in buffer[0..<count].split(separator: 0) {
        let text = String(decoding: word, as: UTF8.self)
        if matches(text), state(of: pid) != "Z" {
          found.append((pid, text))
        }
      }
    }
    return found
  }
}

extension ProcessInfoReader {
  /// The value of `name` in a process's environment as it started (/proc/<pid>/environ), if
  /// it has one and we may read it.
  public static func environmentValue(_ name: String, of pid: Int32) -> String? {
    let fd = open("/proc/\(pid)/environ", O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 8192)
    // An environment is at most a few hundred KiB (ARG_MAX): read it whole.
    while bytes.count < 1 << 20 {
      let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
      guard count > 0 else { break }
      bytes.append(contentsOf: buffer[0..<count])
    }
    let prefix = Array((name + "=").utf8)
    for entry in bytes.split(separator: 0) where entry.starts(with: prefix) {
      return String(decoding: entry.dropFirst(prefix.count), as: UTF8.self)
    }
    return nil
  }
}
