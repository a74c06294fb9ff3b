/// String searches that stay in the standard library's core. `contains(_:)`, `firstRange(of:)`
/// and `replacing(_:with:)` with a string argument live in _StringProcessing, 0.9 MB of code
/// that the daemon would otherwise run, and so map, for a handful of searches per agent log line
/// (BENCHMARKS.md, "the shipped build's layout"). These search UTF-8 bytes instead.
extension StringProtocol {
  /// The first range where `text` occurs; an empty `text` occurs at the start.
  public func firstUTF8Range(of text: String) -> Range<Index>? {
    let needle = text.utf8
    guard let head = needle.first else { return startIndex..<startIndex }
    var from = utf8.startIndex
    while let found = utf8[from...].firstIndex(of: head) {
      if utf8[found...].starts(with: needle) { return found..<utf8.index(found, offsetBy: needle.count) }
      from = utf8.index(after: found)
    }
    return nil
  }

  /// Whether `text` occurs in it.
  public func includes(_ text: String) -> Bool {
    firstUTF8Range(of: text) != nil
  }

  /// Every occurrence of `text` (not empty) replaced by `replacement`, left to right.
  public func replacingEvery(_ text: String, with replacement: String) -> String {
    guard !text.isEmpty else { return String(self) }
    var result = ""
    var rest = self[...]
    while let range = rest.firstUTF8Range(of: text) {
      result += rest[..<range.lowerBound]
      result += replacement
      rest = rest[range.upperBound...]
    }
    result += rest
    return result
  }
}
