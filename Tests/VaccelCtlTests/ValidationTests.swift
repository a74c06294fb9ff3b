import Foundation
import Testing
@testable import VaccelManifests

/// Every rendered document against the Kubernetes OpenAPI schemas (offline, PyPI
/// kubernetes-validate, strict) for 1.28 and the newest version it ships, and yamllint-clean.
@Suite("Rendered manifests validate")
struct ValidationTests {
  static let versions = ["1.28.0", "1.37.0"]

  /// Every variant vaccelctl renders, Manifests/, and the chart with default and k3s values.
  static func renderedFiles(in scratch: Scratch) async throws -> [String] {
    var files = ["vaccel-device-plugin.yaml", "vaccel-device-plugin-k3s.yaml", "example-pod.yaml", "example-pods-kata.yaml"]
      .map { Repository.manifests + "/" + $0 }
    let variants: [(String, (inout ManifestOptions) -> Void)] = [
      ("default", { _ in }),
      ("k3s", { $0.k3s = true }),
      ("auto-deploy", { $0.k3sAutoDeploy = true }),
      ("pods", { $0.only = [.pod] }),
      ("custom", {
        $0.namespace = "accel"
        $0.runtimeClasses = [RuntimeClassSpec(name: "kata-clh-vaccel", handler: "kata-clh")]
        $0.configText = "version: v1\nstatus:\n  group: 1000\n  mode: \"0660\"\nresources:\n  - name: vaccel.org/accel\n  - name: vaccel.org/accel-vm\n    transport: vsock\n"
      }),
    ]
    for (name, configure) in variants {
      var options = ManifestOptions()
      configure(&options)
      files.append(try scratch.write("\(name).yaml", try ManifestRenderer(options: options).render()))
    }
    files.append(try scratch.write("chart-default.yaml", try await HelmChartTests.renderChart()))
    files.append(try scratch.write("chart-k3s.yaml", try await HelmChartTests.renderChart(values: "namespace:\n  create: true\nk3s:\n  autoDeploy: true\n")))
    return files
  }

  @Test func everyDocumentValidatesAgainstKubernetesSchemas() async throws {
    let validate = try Tool.require("kubernetes-validate")
    let scratch = try Scratch()
    defer { scratch.remove() }
    let files = try await Self.renderedFiles(in: scratch)
    for version in Self.versions {
      let result = try await Tool.run(validate, ["-k", version, "--strict", "--quiet"] + files)
      #expect(result.status == 0, "Kubernetes \(version):\n\(result.output)\(result.error)")
    }
    // The validator can fail: a field the schema does not have.
    let bad = try scratch.write("bad.yaml", "apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata:\n  name: x\nhandler: x\nhandlr: y\n")
    #expect(try await Tool.run(validate, ["-k", "1.28.0", "--strict", "--quiet", bad]).status != 0)
  }

  @Test func everyDocumentIsYamllintClean() async throws {
    let yamllint = try Tool.require("yamllint")
    let scratch = try Scratch()
    defer { scratch.remove() }
    let files = try await Self.renderedFiles(in: scratch) + [Repository.chart + "/Chart.yaml", Repository.chart + "/values.yaml"]
    let result = try await Tool.run(yamllint, ["-s", "-c", Repository.root + "/.yamllint"] + files)
    #expect(result.status == 0, "\(result.output)\(result.error)")
    let bad = try scratch.write("bad.yaml", "---\na: 1\na: 2\n")
    #expect(try await Tool.run(yamllint, ["-s", "-c", Repository.root + "/.yamllint", bad]).status != 0)
  }
}
