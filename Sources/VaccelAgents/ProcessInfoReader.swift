import Foundation

/// Reads what /proc says about a process, to recognise an agent across daemon restarts
/// (a pid alone may have been reused).
public enum ProcessInfoReader {
  /// Field 22 of /proc/<pid>/stat: start time in clock ticks since boot.
  public static func startTime(of pid: Int32) -> UInt64? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
      let close = stat.lastIndex(of: ")")
    else { return nil }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    // After the command name: field 3 is at index 0, so field 22 is at index 19.
    guard fields.count > 19 else { return nil }
    return UInt64(fields[19])
  }

  /// The executable of a process, if it is still the same process (`startTime` matches).
  public static func isSameProcess(pid: Int32, startTime: UInt64) -> Bool {
    self.startTime(of: pid) == startTime
  }

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
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
    let me = getpid()
    return entries.compactMap(Int32.init).filter { pid in
      guard pid != me, let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
      return data.split(separator: 0).contains { String(decoding: $0, as: UTF8.self) == argument }
        && state(of: pid) != "Z"
    }
  }
}
