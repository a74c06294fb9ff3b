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
///
/// Three words, so a `Logger` holds it inline: a bigger handler is boxed, one more allocation
/// for every logger with metadata of its own (each slot's has its slot), and the fields are an
/// array of pairs, where a dictionary of two took three times the memory.
public struct DaemonLogHandler: LogHandler {
  /// What every copy shares: set at creation, never changed.
  final class Output: Sendable {
    let format: LogFormat
    let control: LogLevelControl
    let sink: @Sendable (String) -> Void

    init(format: LogFormat, control: LogLevelControl, sink: @escaping @Sendable (String) -> Void) {
      self.format = format
      self.control = control
      self.sink = sink
    }
  }

  /// A metadata provider, boxed: rarely set, and unboxed it would take two of the three words.
  final class Provider: Sendable {
    let provider: Logger.MetadataProvider
    init(_ provider: Logger.MetadataProvider) { self.provider = provider }
  }

  private let output: Output
  private var metadataPairs: [(key: String, value: Logger.Metadata.Value)] = []
  private var provider: Provider?

  public var metadata: Logger.Metadata {
    get { Dictionary(metadataPairs, uniquingKeysWith: { $1 }) }
    set { metadataPairs = newValue.map { ($0.key, $0.value) } }
  }

  public var metadataProvider: Logger.MetadataProvider? {
    get { provider?.provider }
    set { provider = newValue.map(Provider.init) }
  }

  public init(
    label: String, format: LogFormat, control: LogLevelControl,
    sink: @escaping @Sendable (String) -> Void = DaemonLogHandler.standardError
  ) {
    // The label (the logger's name) is not written on the line: `source` says where it came from.
    self.output = Output(format: format, control: control, sink: sink)
  }

  public var logLevel: Logger.Level {
    get { output.control.current }
    set { output.control.current = newValue }
  }

  public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
    get { metadataPairs.first { $0.key == key }?.value }
    set {
      let index = metadataPairs.firstIndex { $0.key == key }
      switch (index, newValue) {
      case (let index?, let value?): metadataPairs[index].value = value
      case (let index?, nil): metadataPairs.remove(at: index)
      case (nil, let value?): metadataPairs.append((key, value))
      case (nil, nil): break
      }
    }
  }

  public func log(event: LogEvent) {
    var fields = metadata
    if let provided = metadataProvider?.get() { fields.merge(provided) { $1 } }
    if let extra = event.metadata { fields.merge(extra) { $1 } }
    let timestamp = Date.ISO8601FormatStyle(includingFractionalSeconds: true).format(Date())
    var pairs: [(String, String)] = [("ts", timestamp), ("level", event.level.rawValue), ("msg", "\(event.message)")]
    pairs += fields.sorted { $0.key < $1.key }.map { ($0.key, "\($0.value)") }
    pairs.append(("source", event.source))
    output.sink(Self.render(pairs, as: output.format))
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
