/// A configuration problem: where it came from, which field, and what is wrong with it.
public struct ConfigError: Error, Equatable, CustomStringConvertible, Sendable {
  /// The file path, `environment VAR` or `flag --name` the value came from.
  public var source: String
  /// The field path, e.g. `resources[1].slots`; empty for the document as a whole.
  public var field: String
  public var problem: String

  public init(source: String, field: String, problem: String) {
    self.source = source
    self.field = field
    self.problem = problem
  }

  public var description: String {
    Self.clipped(field.isEmpty ? "\(source): \(problem)" : "\(source): \(field): \(problem)")
  }

  /// The longest line an error prints. Problems quote what they found, and a value, a key or
  /// a line of YAML can be as long as the 1 MiB file: quoted whole, it buried the reason in
  /// an operator's terminal and log.
  static let maxLineLength = 360

  /// An over-long line keeps its start (the source and field) and a longer end (where the
  /// explanation is) and says how much of its middle was left out.
  static func clipped(_ text: String) -> String {
    guard text.count > maxLineLength else { return text }
    return text.split(separator: "\n", omittingEmptySubsequences: false).map { (line: Substring) -> String in
      guard line.count > maxLineLength else { return String(line) }
      func marker(_ count: Int) -> String { "…[\(count) characters left out]…" }
      let head = 100
      let tail = maxLineLength - head - marker(line.count).count  // room for the longest marker
      return "\(line.prefix(head))\(marker(line.count - head - tail))\(line.suffix(tail))"
    }.joined(separator: "\n")
  }
}
