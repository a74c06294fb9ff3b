import Foundation
import Testing
@testable import VaccelManifests
import Yams

/// The chart, rendered by the test-only renderer (Go text/template + sprig, README "Helm"),
/// compared with what vaccelctl renders, as parsed objects.
@Suite("Helm chart renders the same objects as Manifests/")
struct HelmChartTests {
  static func renderChart(values: String? = nil) async throws -> String {
    let scratch = try Scratch()
    defer { scratch.remove() }
    var arguments = ["run", Repository.helmRenderer, Repository.chart, "vaccel-system"]
    if let values { arguments.append(try scratch.write("values.yaml", values)) }
    var environment = ProcessInfo.processInfo.environment
    environment["GO111MODULE"] = "off"
    environment["GOPATH"] = "/usr/share/gocode"
    // Shared, so sprig compiles once per machine, not once per render.
    environment["GOCACHE"] = Repository.root + "/.build/gocache"
    let result = try await Tool.run(try Tool.require("go"), arguments, environment: environment)
    guard result.status == 0 else { throw ChartError(message: result.error) }
    return result.output
  }

  struct ChartError: Error, CustomStringConvertible {
    var message: String
    var description: String { "the chart did not render: \(message)" }
  }

  /// kind/name → the object as canonical JSON (keys sorted; the ConfigMap's config parsed, so
  /// comments and blank lines do not count).
  static func canonical(_ yaml: String) throws -> [String: String] {
    var out: [String: String] = [:]
    for case var object as [String: Any] in try Yams.load_all(yaml: yaml) {
      if var data = object["data"] as? [String: Any], let config = data["config.yaml"] as? String {
        data["config.yaml"] = try Yams.load(yaml: config)
        object["data"] = data
      }
      let name = (object["metadata"] as? [String: Any])?["name"] as? String ?? ""
      let json = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
      out["\(object["kind"] as? String ?? "")/\(name)"] = String(decoding: json, as: UTF8.self)
    }
    return out
  }

  static func manifests(_ configure: (inout ManifestOptions) -> Void = { _ in }) throws -> [String: String] {
    var options = ManifestOptions()
    configure(&options)
    return try canonical(try ManifestRenderer(options: options).render())
  }

  static func expectSame(_ chart: [String: String], _ manifests: [String: String]) {
    #expect(chart.keys.sorted() == manifests.keys.sorted())
    for (key, object) in manifests {
      #expect(chart[key] == object, "\(key) differs:\nchart:     \(chart[key] ?? "<missing>")\nmanifests: \(object)")
    }
  }

  @Test func defaultValuesRenderManifestsWithoutTheNamespace() async throws {
    let chart = try Self.canonical(try await Self.renderChart())
    var expected = try Self.manifests()
    expected.removeValue(forKey: "Namespace/vaccel-system")
    Self.expectSame(chart, expected)
    // Manifests/ itself, as committed.
    var committed = try Self.canonical(try String(contentsOfFile: Repository.manifests + "/vaccel-device-plugin.yaml", encoding: .utf8))
    committed.removeValue(forKey: "Namespace/vaccel-system")
    Self.expectSame(chart, committed)
  }

  @Test func namespaceAndK3sValuesRenderTheK3sManifests() async throws {
    let chart = try Self.canonical(try await Self.renderChart(values: "namespace:\n  create: true\nk3s:\n  enabled: true\n"))
    Self.expectSame(chart, try Self.manifests { $0.k3s = true })
  }

  @Test func k3sAutoDeployMatchesVaccelctl() async throws {
    let chart = try Self.canonical(try await Self.renderChart(values: "namespace:\n  create: true\nk3s:\n  autoDeploy: true\n"))
    Self.expectSame(chart, try Self.manifests { $0.k3s = true; $0.k3sAutoDeploy = true })
  }

  @Test func podMonitorIsOffByDefaultAndRendersWhenAskedFor() async throws {
    #expect(!(try await Self.renderChart()).contains("PodMonitor"))
    let objects = try Yams.load_all(yaml: try await Self.renderChart(values: "metrics:\n  podMonitor:\n    enabled: true\n    labels:\n      release: prom\n"))
      .compactMap { $0 as? [String: Any] }
    let monitor = try #require(objects.first { $0["kind"] as? String == "PodMonitor" })
    let labels = (monitor["metadata"] as? [String: Any])?["labels"] as? [String: String]
    #expect(labels?["release"] == "prom")
    let endpoint = ((monitor["spec"] as? [String: Any])?["podMetricsEndpoints"] as? [[String: Any]])?.first
    #expect(endpoint?["port"] as? String == "metrics")
    #expect(endpoint?["path"] as? String == "/metrics")
  }
}
