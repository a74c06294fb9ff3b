import Yams

/// What is wrong with a document Yams could not read, said briefly. Yams' own text quotes the
/// whole offending line with a caret under the column; a config line can be as long as the
/// 1 MiB file, so this quotes only a window around the column, caret included.
enum YAMLErrorText {
  static let window = 72

  static func describe(_ error: any Error, in yaml: String) -> String {
    guard let error = error as? YamlError else { return String(describing: error) }
    switch error {
    case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
      .composer(let context, let problem, let mark, _):
      let during = context.map { "\($0.text) at line \($0.mark.line), column \($0.mark.column): " } ?? ""
      return "line \(mark.line), column \(mark.column): \(during)\(problem)\n"
        + excerpt(of: yaml, line: mark.line, column: mark.column)
    case .reader(let problem, let offset, _, _):
      return problem + (offset.map { " at byte \($0)" } ?? "")
    default:
      return error.description
    }
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
