import NodeSupport

/// Path arithmetic on text, as NSString's without Foundation, and lexical only: a render must
/// not depend on the links of the machine it runs on.
extension String {
  /// `/a/b` → `/a`, `/a` → `/`, `a` → ``; trailing slashes ignored.
  var deletingLastPathComponent: String { Directories.parent(of: self) }

  /// `/a/b/` → `b`.
  var lastPathComponent: String {
    var path = Substring(self)
    while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
    return path.split(separator: "/").last.map(String.init) ?? String(path)
  }

  /// Empty and `.` components dropped; `..` taken back in absolute paths.
  var standardizingPath: String {
    guard hasPrefix("/") else { return self }
    var parts: [Substring] = []
    for part in split(separator: "/") where part != "." {
      if part == ".." { _ = parts.popLast() } else { parts.append(part) }
    }
    return "/" + parts.joined(separator: "/")
  }
}
