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

  @Test func aMissingConfigFileExits2() async throws {
    let result = try await ChildProcess.run(binary, ["--config", "/nonexistent/vaccel.yaml"])
    #expect(result.status == 2)
    #expect(result.error.contains("/nonexistent/vaccel.yaml"))
  }
}
