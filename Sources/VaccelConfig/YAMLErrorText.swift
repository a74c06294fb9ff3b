import VaccelYAML

/// What is wrong with a document libyaml could not read, said briefly: libyaml's words, where,
/// and a window of the line around the column with a caret (a config line can be as long as
/// the 1 MiB file, so never the whole line).
enum YAMLErrorText {
  static let window = 72

  static func describe(_ error: YAMLSyntaxError, in yaml: String) -> String {
    guard let line = error.line, let column = error.column else {
      return error.problem + (error.offset.map { " at byte \($0)" } ?? "")
    }
    let during = error.context.map { "\($0.text) at line \($0.line), column \($0.column): " } ?? ""
    return "line \(line), column \(column): \(during)\(error.problem)\n" + excerpt(of: yaml, line: line, column: column)
  }

  /// Up to `window` characters of line `line` around `column` (both from 1, columns counted in
  /// Unicode scalars as libyaml counts them), `…` where the line goes on, a caret below.
  static func excerpt(of yaml: String, line: Int, column: Int) -> String {
    guard line >= 1,
      let text = yaml.split(separator: "\n", maxSplits: line, omittingEmptySubsequences: false).dropFirst(line - 1).first
    else { return "" }
    let scalars = Array(text.unicodeScalars)
    let at = min(max(column - 1, 0), scalars.count)
    let start = max(0, min(at - window / 2, scalars.count - window))
    let end = min(scalars.count, start + window)
    let head = start > 0 ? "…" : "", tail = end < scalars.count ? "…" : ""
    let shown = String(String.UnicodeScalarView(scalars[start..<end]))
    return head + shown + tail + "\n" + String(repeating: " ", count: head.count + at - start) + "^"
  }
}
