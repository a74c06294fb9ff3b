import VaccelYAML

/// Reads a YAML mapping strictly: every key must be known and of the right type, and every
/// problem is reported with its full field path (`resources[1].slots`).
struct YAMLReader {
  let source: String
  let path: String
  private var entries: [(key: String, value: YAMLNode)] = []
  private var consumed: Set<String> = []

  init(_ node: YAMLNode, source: String, path: String) throws(ConfigError) {
    self.source = source
    self.path = path
    guard case .mapping(let mapping) = node else {
      throw self.error(path, "expected a mapping of keys to values, got \(Self.describe(node))")
    }
    var seen: Set<String> = []
    for (key, value) in mapping {
      guard case .scalar(let scalar) = key else {
        throw self.error(path, "keys must be plain strings")
      }
      guard seen.insert(scalar.string).inserted else {
        throw self.error(self.child(scalar.string), "appears twice")
      }
      self.entries.append((scalar.string, value))
    }
  }

  func child(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

  func error(_ field: String, _ problem: String) -> ConfigError {
    ConfigError(source: source, field: field, problem: problem)
  }

  private mutating func take(_ key: String) -> YAMLNode? {
    consumed.insert(key)
    guard let node = entries.first(where: { $0.key == key })?.value else { return nil }
    // An explicit `~`/`null`/empty value means "not set", like a missing key.
    if node.isNull { return nil }
    return node
  }

  mutating func string(_ key: String) throws(ConfigError) -> String? {
    guard let node = take(key) else { return nil }
    guard case .scalar(let scalar) = node else {
      throw error(child(key), "expected a string, got \(Self.describe(node))")
    }
    return scalar.string
  }

  mutating func int(_ key: String) throws(ConfigError) -> Int? {
    guard let node = take(key) else { return nil }
    // Plain scalars only: a quoted "8" is a string, not a number.
    guard let value = node.int else {
      if case .scalar(let scalar) = node, !scalar.plain, Int(scalar.string) != nil {
        throw error(child(key), "expected a whole number, got the quoted string \(Self.describe(node)); write \(scalar.string) without quotes")
      }
      throw error(child(key), "expected a whole number, got \(Self.describe(node))")
    }
    return value
  }

  mutating func duration(_ key: String) throws(ConfigError) -> Duration? {
    guard let text = try string(key) else { return nil }
    guard let value = DurationParser.parse(text) else {
      throw error(child(key), "expected a duration such as 500ms, 5s or 1m, got '\(text)'")
    }
    return value
  }

  /// A list of strings, or one string split at spaces (`args: -a {address}`).
  mutating func words(_ key: String) throws(ConfigError) -> [String]? {
    guard let node = take(key) else { return nil }
    switch node {
    case .scalar(let scalar):
      return scalar.string.split(separator: " ").map(String.init)
    case .sequence(let sequence):
      return try strings(in: sequence, key)
    default:
      throw error(child(key), "expected a list of strings, got \(Self.describe(node))")
    }
  }

  /// A list of strings, each taken whole (paths may hold spaces).
  mutating func stringList(_ key: String) throws(ConfigError) -> [String]? {
    guard let node = take(key) else { return nil }
    guard case .sequence(let sequence) = node else {
      throw error(child(key), "expected a list of strings, got \(Self.describe(node))")
    }
    return try strings(in: sequence, key)
  }

  private func strings(in sequence: [YAMLNode], _ key: String) throws(ConfigError) -> [String] {
    var strings: [String] = []
    for element in sequence {
      guard case .scalar(let scalar) = element else {
        throw error(child(key), "expected a list of strings, got \(Self.describe(element)) in it")
      }
      strings.append(scalar.string)
    }
    return strings
  }

  mutating func stringMap(_ key: String) throws(ConfigError) -> [String: String]? {
    guard let node = take(key) else { return nil }
    var reader = try YAMLReader(node, source: source, path: child(key))
    var map: [String: String] = [:]
    for name in reader.keys {
      map[name] = try reader.string(name) ?? ""
    }
    return map
  }

  var keys: [String] { entries.map(\.key) }

  mutating func mapping(_ key: String) throws(ConfigError) -> YAMLReader? {
    guard let node = take(key) else { return nil }
    return try YAMLReader(node, source: source, path: child(key))
  }

  mutating func sequence(_ key: String) throws(ConfigError) -> [YAMLReader]? {
    guard let node = take(key) else { return nil }
    guard case .sequence(let sequence) = node else {
      throw error(child(key), "expected a list, got \(Self.describe(node))")
    }
    var readers: [YAMLReader] = []
    for (index, element) in sequence.enumerated() {
      readers.append(try YAMLReader(element, source: source, path: "\(child(key))[\(index)]"))
    }
    return readers
  }

  mutating func choice<T: RawRepresentable & CaseIterable>(_ key: String, as: T.Type) throws(ConfigError) -> T?
  where T.RawValue == String {
    guard let text = try string(key) else { return nil }
    guard let value = T(rawValue: text) else {
      let allowed = T.allCases.map(\.rawValue).joined(separator: ", ")
      throw error(child(key), "'\(text)' is not one of: \(allowed)")
    }
    return value
  }

  /// Fails on the first key nobody asked for: a typo must not be ignored silently.
  func rejectUnknownKeys() throws(ConfigError) {
    if let unknown = entries.first(where: { !consumed.contains($0.key) }) {
      let hint = consumed.sorted().joined(separator: ", ")
      throw error(child(unknown.key), "unknown key (known keys here: \(hint))")
    }
  }

  static func describe(_ node: YAMLNode) -> String {
    switch node {
    case .scalar(let scalar): return "'\(scalar.string.prefix(40))'"
    case .mapping: return "a mapping"
    case .sequence: return "a list"
    }
  }
}

enum DurationParser {
  /// Parses `250ms`, `5s`, `2m`, `1h` (one unit, whole numbers).
  static func parse(_ text: String) -> Duration? {
    let units: [(String, (Int) -> Duration)] = [
      ("ms", { .milliseconds($0) }), ("s", { .seconds($0) }),
      ("m", { .seconds($0 * 60) }), ("h", { .seconds($0 * 3600) }),
    ]
    for (suffix, make) in units where text.hasSuffix(suffix) {
      guard let value = Int(text.dropLast(suffix.count)), value >= 0, value <= 86_400_000 else { return nil }
      return make(value)
    }
    return nil
  }
}
