import DaemonLogging
#if canImport(Glibc)
import Glibc
#endif

/// The daemon's command lines, parsed by hand. Both commands take only `--name value` (or
/// `--name=value`) options, `--help` and `--version`; ArgumentParser, which parsed them before,
/// kept 0.3 MiB of the idle daemon resident (its code, metadata and conformances; issue 14).
/// vaccelctl, which has subcommands, keeps it.
struct Flags {
  struct Option {
    let name: String
    let help: String
    /// Shown after the flag in help and usage: `--config <file>`.
    let value: String
  }

  /// What the command line asked for.
  enum Request {
    case run([String: String])
    case help
    case version
  }

  /// A usage error: the message names the argument.
  struct Failure: Error {
    let message: String
  }

  let command: String
  let abstract: String
  let discussion: String
  let options: [Option]
  let version: String?

  /// Option name (without dashes) → value, the last one given winning; or help or version.
  func parse(_ arguments: [String]) throws(Failure) -> Request {
    var values: [String: String] = [:]
    var index = 0
    while index < arguments.count {
      let argument = arguments[index]
      index += 1
      if argument == "-h" || argument == "--help" { return .help }
      if argument == "--version", version != nil { return .version }
      guard argument.hasPrefix("--"), argument.count > 2 else {
        throw Failure(message: "Unexpected argument '\(argument)'")
      }
      let flag = argument.dropFirst(2)
      let name: Substring, inline: Substring?
      if let equals = flag.firstIndex(of: "=") {
        (name, inline) = (flag[..<equals], flag[flag.index(after: equals)...])
      } else {
        (name, inline) = (flag, nil)
      }
      guard let option = options.first(where: { $0.name == name }) else {
        throw Failure(message: "Unknown option '--\(name)'")
      }
      if let inline {
        values[option.name] = String(inline)
      } else if index < arguments.count, !arguments[index].hasPrefix("--") {
        values[option.name] = arguments[index]
        index += 1
      } else {
        throw Failure(message: "Missing value for '--\(option.name) <\(option.value)>'")
      }
    }
    return .run(values)
  }

  /// `command [--a <x>] [--b <y>]`, wrapped between options.
  var usage: String {
    Self.wrap([command] + options.map { "[--\($0.name) <\($0.value)>]" }, width: 73, indent: "       ")
  }

  var help: String {
    var rows = options.map { ("--\($0.name) <\($0.value)>", $0.help) }
    if version != nil { rows.append(("--version", "Show the version.")) }
    rows.append(("-h, --help", "Show help information."))
    let column = (rows.map(\.0.count).max() ?? 0) + 4
    let table = rows.map { flag, text in
      let words = text.split(separator: " ").map(String.init)
      let padded = "  " + flag + String(repeating: " ", count: column - 2 - flag.count)
      return padded + Self.wrap(words, width: max(80 - column, 30), indent: String(repeating: " ", count: column))
    }
    return """
      OVERVIEW: \(abstract)

      \(Self.wrap(discussion.split(separator: " ").map(String.init), width: 80))

      USAGE: \(usage)

      OPTIONS:
      \(table.joined(separator: "\n"))

      """
  }

  /// Parses `arguments`: prints help or the version and exits 0, or prints a usage error and
  /// exits 2 (the daemon's code for "your input is wrong", flag or file alike).
  func parseOrExit(_ arguments: [String]) -> [String: String] {
    do {
      let text: String
      switch try parse(arguments) {
      case .run(let values): return values
      case .help: text = help
      case .version: text = (version ?? "") + "\n"
      }
      let bytes = Array(text.utf8)
      _ = bytes.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
      exit(0)
    } catch {
      usageError(error.message)
    }
  }

  /// A bad value found after parsing (a number that is not one, a relative path).
  func usageError(_ message: String) -> Never {
    DaemonLogHandler.standardError("Error: \(message)\nUsage: \(usage)\n  See '\(command) --help' for more information.")
    exit(2)
  }

  /// Joins `words` with spaces into lines of at most `width` characters (a longer word gets a
  /// line of its own); lines after the first start with `indent`, which `width` does not count.
  static func wrap(_ words: [String], width: Int, indent: String = "") -> String {
    var lines: [String] = []
    var line = ""
    for word in words {
      if !line.isEmpty, line.count + 1 + word.count > width {
        lines.append(line)
        line = ""
      }
      line += (line.isEmpty ? "" : " ") + word
    }
    if !line.isEmpty { lines.append(line) }
    return lines.joined(separator: "\n" + indent)
  }
}
