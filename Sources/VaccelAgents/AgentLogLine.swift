import Logging
import VaccelConfig

/// The severity an agent gave one of its lines. The agent's own lines (Rust's logger:
/// `[2026-11-29T10:00:00Z INFO  vaccel_rpc_agent] …`) and libvaccel's (`… - <error> …`) both
/// carry a level word near the start; a line without one (a panic's text, a continuation) is
/// `info`, unless it is a known failure.
enum AgentLogLine {
  enum Severity: Int, Comparable {
    case debug, info, warning, error

    static func < (a: Severity, b: Severity) -> Bool { a.rawValue < b.rawValue }

    var daemonLevel: Logger.Level {
      switch self {
      case .debug: .debug
      case .info: .info
      case .warning: .warning
      case .error: .error
      }
    }
  }

  static func severity(of line: String) -> Severity {
    if KnownAgentFailures.explain(line) != nil { return .error }
    var word = ""
    for character in line.prefix(64).uppercased() {
      // An ASCII letter by its value: isLetter reads the Unicode tables, pages the daemon
      // would map for this alone (agents log in ASCII nearly always).
      let isLetter = character.asciiValue.map { (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) } ?? character.isLetter
      if isLetter {
        word.append(character)
        continue
      }
      if let found = level(word) { return found }
      word = ""
    }
    return level(word) ?? .info
  }

  private static func level(_ word: String) -> Severity? {
    switch word {
    case "ERROR", "ERR", "FATAL", "CRITICAL": .error
    case "WARN", "WARNING": .warning
    case "INFO", "NOTICE": .info
    case "DEBUG", "TRACE": .debug
    default: nil
    }
  }

  /// Whether a line of `severity` is forwarded under `setting`.
  static func forwards(_ severity: Severity, under setting: AgentLogForwarding) -> Bool {
    switch setting {
    case .off: false
    case .debug: true
    case .info: severity >= .info
    case .warning: severity >= .warning
    case .error: severity >= .error
    }
  }
}
