import Foundation
import Testing

/// The executable's contract with whoever starts it: exit codes and one clear line.
@Suite("vaccel-device-plugin executable")
struct DaemonExecutableTests {
  var binary: String { URL(fileURLWithPath: Fixtures.standinAgent).deletingLastPathComponent().path + "/vaccel-device-plugin" }

  @Test(arguments: [
    ("version: v1\nresources: [{name: vaccel.org/accel, slots: 0}]\n", "resources[0].slots"),
    ("version: v1\nresources: [{name: accel}]\n", "resources[0].name"),
    ("version: v1\nrunDirectory: /x\n", "runDirectory"),
    ("version: v1\nresources: [\n", "not valid YAML"),
  ])
  func aBadConfigExits2WithOneLineNamingTheField(_ yaml: String, _ field: String) async throws {
    let directory = try TestDirectory()
    let config = directory.sub("config.yaml")
    try yaml.write(toFile: config, atomically: true, encoding: .utf8)
    let result = try await ChildProcess.run(binary, ["--config", config])
    #expect(result.status == 2)
    #expect(result.error.contains(field), "\(result.error)")
    #expect(result.error.hasPrefix("vaccel-device-plugin: invalid configuration: \(config): "), "\(result.error)")
  }

  @Test func aBadFlagExits2() async throws {
    let result = try await ChildProcess.run(binary, ["--bogus"])
    #expect(result.status == 2)
    #expect(result.error.contains("Unknown option '--bogus'"))
  }

  /// The flags are parsed by hand (Flags.swift): each form an operator may type, and each
  /// mistake, through the real binary.
  @Test func helpListsEveryOptionAndExits0() async throws {
    let result = try await ChildProcess.run(binary, ["--help"])
    #expect(result.status == 0)
    for flag in [
      "--config <file>", "--device-plugin-dir <folder>", "--pod-resources-socket <socket>", "--run-dir <folder>",
      "--state-dir <folder>", "--log-level <level>", "--log-format <format>", "--metrics-address <address>",
      "--status-socket <socket>", "--version", "-h, --help",
    ] {
      #expect(result.output.contains(flag), "\(flag) missing from --help")
    }
    let host = try await ChildProcess.run(binary, ["agent-host", "-h"])
    #expect(host.status == 0 && host.output.contains("--stop-grace <seconds>"), "\(host.output)")
  }

  @Test func versionPrintsOneLine() async throws {
    let result = try await ChildProcess.run(binary, ["--version"])
    #expect(result.status == 0)
    #expect(result.output.split(separator: "\n").count == 1 && !result.output.isEmpty, "\(result.output)")
  }

  @Test(arguments: [
    (["--config"], "Missing value for '--config <file>'"),
    (["--config", "--log-level", "debug"], "Missing value for '--config <file>'"),
    (["extra"], "Unexpected argument 'extra'"),
    (["--"], "Unexpected argument '--'"),
    (["agent-host", "--version"], "Unknown option '--version'"),
    (["agent-host", "--stop-grace", "soon"], "--stop-grace soon is not 0 to 300 seconds"),
  ])
  func aUsageMistakeExits2NamingIt(_ arguments: [String], _ message: String) async throws {
    let result = try await ChildProcess.run(binary, arguments)
    #expect(result.status == 2)
    #expect(result.error.hasPrefix("Error: \(message)\n"), "\(result.error)")
    #expect(result.error.contains("Usage: vaccel-device-plugin"), "\(result.error)")
  }

  /// `--name=value` is read as `--name value`, and a flag given twice takes its last value.
  @Test func equalsFormAndTheLastValueCount() async throws {
    let equals = try await ChildProcess.run(binary, ["--config=/nonexistent/vaccel.yaml"])
    #expect(equals.status == 2)
    #expect(equals.error.contains("/nonexistent/vaccel.yaml: no such file"), "\(equals.error)")
    let twice = try await ChildProcess.run(binary, ["--config", "/nonexistent/first.yaml", "--config", "/nonexistent/second.yaml"])
    #expect(twice.status == 2)
    #expect(twice.error.contains("/nonexistent/second.yaml") && !twice.error.contains("first.yaml"), "\(twice.error)")
  }

  @Test func aMissingConfigFileExits2() async throws {
    let result = try await ChildProcess.run(binary, ["--config", "/nonexistent/vaccel.yaml"])
    #expect(result.status == 2)
    #expect(result.error.contains("/nonexistent/vaccel.yaml: no such file"), "\(result.error)")
  }

  @Test func aConfigPathThatIsAFolderExits2SayingSo() async throws {
    let directory = try TestDirectory()
    let result = try await ChildProcess.run(binary, ["--config", directory.path])
    #expect(result.status == 2)
    #expect(result.error.contains("\(directory.path): is a folder, not a config file"), "\(result.error)")
  }

  /// A busy metrics port names the setting and the address, not NIO's syscall.
  @Test func aBusyMetricsPortExits1NamingTheSetting() async throws {
    let directory = try TestDirectory()
    let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(listener) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) == 0 && listen(listener, 1) == 0 && getsockname(listener, $0, &length) == 0 }
    }
    try #require(bound)
    let port = Int(UInt16(bigEndian: address.sin_port))
    let result = try await ChildProcess.run(binary, [
      "--metrics-address", "127.0.0.1:\(port)", "--device-plugin-dir", directory.sub("dp"), "--run-dir", directory.sub("run"),
      "--state-dir", directory.sub("state"), "--pod-resources-socket", directory.sub("pr.sock"),
    ])
    #expect(result.status == 1)
    #expect(result.error.contains("metrics.address 127.0.0.1:\(port): cannot listen: Address already in use"), "\(result.error)")
  }
}
