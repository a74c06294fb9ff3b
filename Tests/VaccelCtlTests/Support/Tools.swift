import Foundation

/// Paths of the repository, found from this file's location.
enum Repository {
  static let root: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<4 { url.deleteLastPathComponent() }
    return url.path
  }()
  static var manifests: String { root + "/Manifests" }
  static var chart: String { root + "/charts/vaccel-device-plugin" }
  static var helmRenderer: String { root + "/Tests/VaccelCtlTests/HelmRenderer/main.go" }

  /// Built executables sit beside the test bundle.
  static func built(_ name: String) -> String {
    let folder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
    let beside = folder + "/" + name
    return FileManager.default.isExecutableFile(atPath: beside) ? beside : root + "/.build/debug/" + name
  }
}

/// A child process run to completion, its output collected in files (no pipe to fill up).
struct Tool {
  var status: Int32
  var output: String
  var error: String

  static func run(
    _ executable: String, _ arguments: [String], environment: [String: String]? = nil, in directory: String? = nil
  ) async throws -> Tool {
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("tool-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: scratch) }
    let out = scratch.appendingPathComponent("out"), err = scratch.appendingPathComponent("err")
    _ = FileManager.default.createFile(atPath: out.path, contents: nil)
    _ = FileManager.default.createFile(atPath: err.path, contents: nil)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment { process.environment = environment }
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    process.standardOutput = try FileHandle(forWritingTo: out)
    process.standardError = try FileHandle(forWritingTo: err)
    process.standardInput = FileHandle.nullDevice
    let status: Int32 = try await withCheckedThrowingContinuation { continuation in
      process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
      do { try process.run() } catch { continuation.resume(throwing: error) }
    }
    return Tool(
      status: status, output: try String(contentsOf: out, encoding: .utf8), error: try String(contentsOf: err, encoding: .utf8))
  }

  /// `name` on PATH (CI installs go, kubernetes-validate and yamllint through scripts/install-test-deps).
  static func which(_ name: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    return (path.split(separator: ":").map(String.init) + ["/usr/local/bin", "/usr/bin"])
      .map { $0 + "/" + name }.first { FileManager.default.isExecutableFile(atPath: $0) }
  }

  static func require(_ name: String) throws -> String {
    guard let found = which(name) else { throw Missing(tool: name) }
    return found
  }

  struct Missing: Error, CustomStringConvertible {
    var tool: String
    var description: String { "\(tool) not found: run scripts/install-test-deps" }
  }
}

/// A fresh temp folder per test.
struct Scratch {
  let path: String
  init() throws {
    path = FileManager.default.temporaryDirectory.appendingPathComponent("vaccelctl-\(UUID().uuidString.prefix(8))").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  }
  func sub(_ name: String) -> String { path + "/" + name }
  func write(_ name: String, _ text: String) throws -> String {
    try text.write(toFile: sub(name), atomically: true, encoding: .utf8)
    return sub(name)
  }
  func remove() { try? FileManager.default.removeItem(atPath: path) }
}
