import CYAML

/// Writes `YAMLNode`s as block YAML with libyaml's emitter, the way the manifests have always
/// been written (Yams' YAMLEncoder with sorted keys, an explicit `---`, no line width, literal
/// blocks for multi-line strings), without Yams and so without Foundation:
/// - a string that YAML 1.1 would read as something else (`'true'`, `'8'`, `'~'`) is single-quoted;
/// - a string with a newline is a literal block;
/// - any other scalar is left to libyaml, which writes it plain where plain reads back the same.
public enum YAMLEmitter {
  public struct Failure: Error, CustomStringConvertible {
    public let description: String
  }

  /// One document, `---` first.
  public static func document(_ node: YAMLNode) throws(Failure) -> String {
    var emitter = yaml_emitter_t()
    guard yaml_emitter_initialize(&emitter) == 1 else { throw Failure(description: "libyaml's emitter could not start") }
    defer { yaml_emitter_delete(&emitter) }
    let output = Output()
    let context = Unmanaged.passUnretained(output).toOpaque()
    yaml_emitter_set_output(&emitter, { context, buffer, size in
      guard let context, let buffer else { return 0 }
      Unmanaged<Output>.fromOpaque(context).takeUnretainedValue().bytes.append(contentsOf: UnsafeBufferPointer(start: buffer, count: size))
      return 1
    }, context)
    yaml_emitter_set_unicode(&emitter, 0)
    yaml_emitter_set_width(&emitter, -1)
    yaml_emitter_set_indent(&emitter, 2)
    yaml_emitter_set_break(&emitter, YAML_LN_BREAK)

    var event = yaml_event_t()
    yaml_stream_start_event_initialize(&event, YAML_UTF8_ENCODING)
    try emit(&emitter, &event)
    yaml_document_start_event_initialize(&event, nil, nil, nil, 0)
    try emit(&emitter, &event)
    try write(node, &emitter)
    yaml_document_end_event_initialize(&event, 1)
    try emit(&emitter, &event)
    yaml_stream_end_event_initialize(&event)
    try emit(&emitter, &event)
    return String(decoding: output.bytes, as: UTF8.self)
  }

  private final class Output {
    var bytes: [UInt8] = []
  }

  private static func emit(_ emitter: inout yaml_emitter_t, _ event: inout yaml_event_t) throws(Failure) {
    guard yaml_emitter_emit(&emitter, &event) == 1 else {
      throw Failure(description: "libyaml could not write the document: " + (emitter.problem.map { String(cString: $0) } ?? "unknown problem"))
    }
  }

  /// Recursive: what is written is the program's own objects, a few levels deep.
  private static func write(_ node: YAMLNode, _ emitter: inout yaml_emitter_t) throws(Failure) {
    var event = yaml_event_t()
    switch node {
    case .scalar(let scalar):
      let style: yaml_scalar_style_t
      if scalar.plain {
        style = YAML_ANY_SCALAR_STYLE  // a number or a boolean: written as it is
      } else if scalar.string.contains("\n") {
        style = YAML_LITERAL_SCALAR_STYLE
      } else if YAML11.readsAsNonString(scalar.string) {
        style = YAML_SINGLE_QUOTED_SCALAR_STYLE
      } else {
        style = YAML_ANY_SCALAR_STYLE
      }
      let bytes = Array(scalar.string.utf8) + [0]  // never empty: libyaml wants a pointer
      bytes.withUnsafeBufferPointer { buffer in
        _ = yaml_scalar_event_initialize(&event, nil, nil, buffer.baseAddress, Int32(buffer.count - 1), 1, 1, style)
      }
      try emit(&emitter, &event)
    case .sequence(let items):
      yaml_sequence_start_event_initialize(&event, nil, nil, 1, YAML_ANY_SEQUENCE_STYLE)
      try emit(&emitter, &event)
      for item in items { try write(item, &emitter) }
      yaml_sequence_end_event_initialize(&event)
      try emit(&emitter, &event)
    case .mapping(let pairs):
      yaml_mapping_start_event_initialize(&event, nil, nil, 1, YAML_ANY_MAPPING_STYLE)
      try emit(&emitter, &event)
      for pair in pairs.sorted(by: { key($0.key) < key($1.key) }) {
        try write(pair.key, &emitter)
        try write(pair.value, &emitter)
      }
      yaml_mapping_end_event_initialize(&event)
      try emit(&emitter, &event)
    }
  }

  private static func key(_ node: YAMLNode) -> String {
    if case .scalar(let scalar) = node { return scalar.string }
    return ""
  }
}

/// The YAML 1.1 implicit types (bool, int, float, merge, null, timestamp, value), as Yams and
/// most YAML 1.1 readers resolve plain scalars: a string matching one must be quoted.
enum YAML11 {
  nonisolated(unsafe) static let patterns: [Regex<AnyRegexOutput>] = [
    "yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF",
    "[-+]?0b[0-1_]+|[-+]?0o?[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+",
    "[-+]?(?:[0-9][0-9_]*)(?:\\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?|\\.[0-9_]+(?:[eE][-+][0-9]+)?"
      + "|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\\.[0-9_]*|[-+]?\\.(?:inf|Inf|INF)|\\.(?:nan|NaN|NAN)",
    "<<",
    "~|null|Null|NULL|",
    "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"
      + "|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \\t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\\.[0-9]*)?"
      + "(?:[ \\t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?",
    "=",
  ].map { try! Regex("^(?:\($0))$") }

  static func readsAsNonString(_ text: String) -> Bool {
    patterns.contains { (try? $0.wholeMatch(in: text)) != nil }
  }
}
