import Foundation
import Testing
import VaccelManifests

/// The real `vaccelctl` binary: exit codes and one-line errors.
@Suite("vaccelctl executable")
struct VaccelctlExecutableTests {
  static var vaccelctl: String { Repository.built("vaccelctl") }

  @Test func anUnreachableDaemonIsOneLineAndExit1() async throws {
    let result = try await Tool.run(Self.vaccelctl, ["status", "--socket", "/nonexistent/device-plugin.sock"])
    #expect(result.status == 1)
    #expect(result.output.isEmpty)
    #expect(result.error.split(separator: "\n").count == 1)
    #expect(result.error.contains("/nonexistent/device-plugin.sock") && result.error.contains("no such socket"))
  }

  @Test(arguments: [
    ["status", "-o", "xml"],
    ["manifests", "--only", "Foo"],
    ["manifests", "--runtime-class", "bad"],
    ["manifests", "--namespace", "Bad_NS"],
    ["manifests", "--config", "/nonexistent.yaml"],
    ["doctor", "--config", "/nonexistent.yaml"],
  ])
  func badInputExits2(_ arguments: [String]) async throws {
    let result = try await Tool.run(Self.vaccelctl, arguments)
    #expect(result.status == 2, "\(arguments): \(result.error)")
    #expect(!result.error.isEmpty)
  }

  /// A missing config reads the same wherever vaccelctl reads one.
  @Test(arguments: [["manifests", "--config", "/nonexistent.yaml"], ["doctor", "--config", "/nonexistent.yaml"]])
  func aMissingConfigIsNoSuchFileEverywhere(_ arguments: [String]) async throws {
    let result = try await Tool.run(Self.vaccelctl, arguments)
    #expect(result.status == 2)
    #expect(result.error.contains("/nonexistent.yaml: no such file"), "\(result.error)")
  }

  @Test func manifestsPrintsTheRender() async throws {
    let result = try await Tool.run(Self.vaccelctl, ["manifests", "--k3s"])
    #expect(result.status == 0)
    var options = ManifestOptions()
    options.k3s = true
    #expect(result.output == (try ManifestRenderer(options: options).render()))
  }
}
