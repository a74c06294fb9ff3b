#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
public import Logging
import Synchronization

/// How log lines look: `logfmt` key=value pairs (the default, for people and grep) or one
/// JSON object a line (for log shippers).
public enum LogFormat: String, Sendable, CaseIterable {
  case keyvalue
  case json
}

/// The level every daemon logger shares, so SIGHUP (a config reload) changes it everywhere
/// at once, without a restart.
public final class LogLevelControl: Sendable {
  private let level: Mutex<Logger.Level>

  public init(_ level: Logger.Level) {
    self.level = Mutex(level)
  }

  public var current: Logger.Level {
    get { level.withLock { $0 } }
    set { level.withLock { $0 = newValue } }
  }
}

/// Writes one line a log event to stderr, as key=value or JSON, with metadata as fields.
public struct DaemonLogHandler: LogHandler {
  public var metadata: Logger.Metadata = [:]
  public var metadataProvider: Logger.MetadataProvider?
  let label: String
  let format: LogFormat
  let control: LogLevelControl
  let sink: @Sendable (String) -> Void

  public init(
    label: String, format: LogFormat, control: LogLevelControl,
    sink: @escaping @Sendable (String) -> Void = DaemonLogHandler.standardError
  ) {
    self.label = label
    self.format = format
    self.control = control
    self.sink = sink
  }

  public var logLevel: Logger.Level {
    get { control.current }
    set { control.current = newValue }
  }

  public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
    get { metadata[key] }
    set { metadata[key] = newValue }
  }

  public func log(event: LogEvent) {
    var fields = metadata
    if let provided = metadataProvider?.get() { fields.merge(provided) { $1 } }
    if let extra = event.metadata { fields.merge(extra) { $1 } }
    let timestamp = Date.ISO8601FormatStyle(includingFractionalSeconds: true).format(Date())
    var pairs: [(String, String)] = [("ts", timestamp), ("level", event.level.rawValue), ("msg", "\(event.message)")]
    pairs += fields.sorted { $0.key < $1.key }.map { ($0.key, "\($0.value)") }
    pairs.append(("source", event.source))
    sink(Self.render(pairs, as: format))
  }

  static func render(_ pairs: [(String, String)], as format: LogFormat) -> String {
    switch format {
    case .keyvalue:
      return pairs.map { "\($0.0)=\(logfmt($0.1))" }.joined(separator: " ")
    case .json:
      return "{" + pairs.map { "\(json($0.0)):\(json($0.1))" }.joined(separator: ",") + "}"
    }
  }

  /// Quoted when it holds spaces, quotes, `=` or control characters; bare otherwise.
  static func logfmt(_ value: String) -> String {
    let needsQuotes = value.isEmpty || value.unicodeScalars.contains {
      $0 == " " || $0 == "\"" || $0 == "=" || $0.properties.generalCategory == .control
    }
    return needsQuotes ? json(value) : value
  }

  static func json(_ value: String) -> String {
    var out = "\""
    for scalar in value.unicodeScalars {
      switch scalar {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\r": out += "\\r"
      case "\t": out += "\\t"
      default:
        if scalar.value < 0x20 {
          let hex = String(scalar.value, radix: 16)
          out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        } else {
          out.unicodeScalars.append(scalar)
        }
      }
    }
    return out + "\""
  }

  private static let writeLock = Mutex(())

  /// One write(2) a line, serialised, so lines from different threads never interleave.
  public static let standardError: @Sendable (String) -> Void = { line in
    let bytes = Array((line + "\n").utf8)
    writeLock.withLock { _ in
      _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    }
  }
}
