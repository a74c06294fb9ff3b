import CYAML

/// A YAML node as the config reader and the manifest writer need it: scalars keep whether they
/// were plain (a quoted "8" is a string, not a number), aliases are resolved to the node they name.
public indirect enum YAMLNode: Sendable {
  case scalar(YAMLScalar)
  case mapping([(key: YAMLNode, value: YAMLNode)])
  case sequence([YAMLNode])

  /// A plain `~`, `null`, `Null`, `NULL` or empty scalar: the YAML core schema's null.
  public var isNull: Bool {
    guard case .scalar(let scalar) = self, scalar.plain else { return false }
    return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
  }

  /// A plain scalar that is a YAML core schema integer: decimal, `0o` octal or `0x` hex.
  public var int: Int? {
    guard case .scalar(let scalar) = self, scalar.plain else { return nil }
    let text = scalar.string
    if text.hasPrefix("0x") { return Int(text.dropFirst(2), radix: 16) }
    if text.hasPrefix("0o") { return Int(text.dropFirst(2), radix: 8) }
    // By its bytes: Character.isNumber reads the Unicode tables (pages the daemon would map for
    // this alone), and Int(_:) takes ASCII digits only anyway.
    guard let first = text.utf8.first else { return nil }
    let digit = first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9")
    guard digit || ((first == UInt8(ascii: "-") || first == UInt8(ascii: "+")) && text.utf8.count > 1) else { return nil }
    return Int(text)
  }
}

public struct YAMLScalar: Sendable {
  public var string: String
  /// Plain style and no explicit tag: the only scalars that resolve to numbers or null.
  public var plain: Bool

  public init(string: String, plain: Bool) {
    self.string = string
    self.plain = plain
  }
}

/// Where libyaml stopped, with its own words; lines and columns counted from 1.
public struct YAMLSyntaxError: Error, Sendable {
  public var problem: String
  public var line: Int?
  public var column: Int?
  public var context: (text: String, line: Int, column: Int)?
  public var offset: Int?
}

/// Composes one YAML document into `YAMLNode`s with libyaml's event parser. Iterative (a
/// document nested 5,000 deep is an error, not a deep recursion), with bounds on nesting and
/// on the nodes that aliases may multiply.
public enum YAMLComposer {
  public static let maximumDepth = 512
  public static let maximumNodes = 1_000_000

  /// The document's root, or nil for an empty stream.
  public static func compose(_ yaml: String) throws(YAMLSyntaxError) -> YAMLNode? {
    var parser = yaml_parser_t()
    guard yaml_parser_initialize(&parser) == 1 else { throw YAMLSyntaxError(problem: "libyaml could not start (out of memory)") }
    defer { yaml_parser_delete(&parser) }
    let bytes = Array(yaml.utf8)
    return try bytes.withUnsafeBufferPointer { buffer throws(YAMLSyntaxError) -> YAMLNode? in
      yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
      return try run(&parser)
    }
  }

  /// An open collection: a mapping collects keys and values in turn.
  private struct Open {
    var anchor: String?
    var isMapping: Bool
    var items: [YAMLNode] = []
    var line: Int
    var column: Int
  }

  private static func run(_ parser: inout yaml_parser_t) throws(YAMLSyntaxError) -> YAMLNode? {
    var stack: [Open] = []
    var anchors: [String: (node: YAMLNode, size: Int)] = [:]
    var sizes: [Int] = [0]  // nodes under each open collection, aliases expanded; [0] is the document
    var total = 0
    var root: YAMLNode?
    var documents = 0
    var event = yaml_event_t()

    /// `size`: the nodes `node` stands for; `new`: those not counted yet (a closing
    /// collection's children were counted as they came).
    func add(_ node: YAMLNode, size: Int, new: Int, anchor: String?) throws(YAMLSyntaxError) {
      if let anchor { anchors[anchor] = (node, size) }
      sizes[sizes.count - 1] += size
      total += new
      if total > maximumNodes {
        throw YAMLSyntaxError(problem: "more than \(maximumNodes) nodes once aliases are expanded")
      }
      if stack.isEmpty { root = node } else { stack[stack.count - 1].items.append(node) }
    }

    while true {
      guard yaml_parser_parse(&parser, &event) == 1 else { throw error(of: parser) }
      defer { yaml_event_delete(&event) }
      let line = Int(event.start_mark.line) + 1, column = Int(event.start_mark.column) + 1
      switch event.type {
      case YAML_STREAM_END_EVENT:
        return root
      case YAML_DOCUMENT_START_EVENT:
        documents += 1
        if documents > 1 {
          throw YAMLSyntaxError(problem: "expected a single document, found a second one", line: line, column: column)
        }
      case YAML_SCALAR_EVENT:
        let scalar = event.data.scalar
        let text = String(decoding: UnsafeBufferPointer(start: scalar.value, count: scalar.length), as: UTF8.self)
        let plain = scalar.style == YAML_PLAIN_SCALAR_STYLE && scalar.tag == nil
        try add(.scalar(YAMLScalar(string: text, plain: plain)), size: 1, new: 1, anchor: string(scalar.anchor))
      case YAML_ALIAS_EVENT:
        let name = string(event.data.alias.anchor) ?? ""
        guard let anchored = anchors[name] else {
          throw YAMLSyntaxError(problem: "found undefined alias '\(name.prefix(40))'", line: line, column: column)
        }
        try add(anchored.node, size: anchored.size, new: anchored.size, anchor: nil)
      case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
        guard stack.count < maximumDepth else {
          throw YAMLSyntaxError(problem: "Maximum nesting level (\(maximumDepth)) reached", line: line, column: column)
        }
        let isMapping = event.type == YAML_MAPPING_START_EVENT
        let anchor = string(isMapping ? event.data.mapping_start.anchor : event.data.sequence_start.anchor)
        stack.append(Open(anchor: anchor, isMapping: isMapping, line: line, column: column))
        sizes.append(1)
      case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
        let open = stack.removeLast()
        let size = sizes.removeLast()
        let node: YAMLNode
        if open.isMapping {
          var pairs: [(key: YAMLNode, value: YAMLNode)] = []
          pairs.reserveCapacity(open.items.count / 2)
          var index = 0
          while index + 1 < open.items.count {
            pairs.append((open.items[index], open.items[index + 1]))
            index += 2
          }
          node = .mapping(pairs)
        } else {
          node = .sequence(open.items)
        }
        try add(node, size: size, new: 1, anchor: open.anchor)
      default:
        break
      }
    }
  }

  private static func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
    guard let pointer else { return nil }
    return String(cString: pointer)
  }

  private static func error(of parser: yaml_parser_t) -> YAMLSyntaxError {
    let problem = parser.problem.map { String(cString: $0) } ?? "not valid YAML"
    if parser.error == YAML_READER_ERROR {
      return YAMLSyntaxError(problem: problem, offset: Int(parser.problem_offset))
    }
    var error = YAMLSyntaxError(
      problem: problem, line: Int(parser.problem_mark.line) + 1, column: Int(parser.problem_mark.column) + 1)
    if let context = parser.context {
      error.context = (String(cString: context), Int(parser.context_mark.line) + 1, Int(parser.context_mark.column) + 1)
    }
    return error
  }
}
