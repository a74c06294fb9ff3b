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
    field.isEmpty ? "\(source): \(problem)" : "\(source): \(field): \(problem)"
  }
}
