import DevicePlugin
import Foundation
import Testing
import VaccelConfig
import VaccelMetrics

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

@Suite("Metrics and health endpoints")
struct MetricsTests {
  func get(_ port: Int, _ path: String) async throws -> (status: Int, body: String) {
    let (data, response) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)\(path)")!)
    return ((response as? HTTPURLResponse)?.statusCode ?? -1, String(decoding: data, as: UTF8.self))
  }

  @Test func readinessFollowsRegistrationAndMetricsCountWhatHappened() async throws {
    try await DaemonHarness.using(try await DaemonHarness.start(configure: { $0.metricsAddress = "127.0.0.1:0" }, kubeletFirst: false)) { harness in
      let port = try #require(await harness.daemon.metricsListener?.boundPort)
      #expect(try await get(port, "/healthz").status == 200)
      let notReady = try await get(port, "/readyz")
      #expect(notReady.status == 503 && notReady.body.contains("vaccel.org/accel: not registered"), "\(notReady.body)")

      try await harness.kubelet.start()
      try await harness.registered()
      _ = try await harness.kubelet.admit(harness.resource, [["accel-0"]])
      _ = try? await harness.kubelet.admit(harness.resource, [["nope"]])
      let ready = try await get(port, "/readyz")
      #expect(ready.status == 200, "\(ready.body)")

      let metrics = try await get(port, "/metrics")
      #expect(metrics.status == 200)
      let text = metrics.body
      for expected in [
        #"vaccel_device_plugin_registered{resource="vaccel.org/accel"} 1"#,
        #"vaccel_device_plugin_registrations_total{resource="vaccel.org/accel"} 1"#,
        #"vaccel_device_plugin_allocations_total{resource="vaccel.org/accel"} 1"#,
        #"vaccel_device_plugin_allocation_errors_total{resource="vaccel.org/accel",code="invalidArgument"} 1"#,
        #"vaccel_device_plugin_slots{resource="vaccel.org/accel",state="total"} 8"#,
        #"vaccel_device_plugin_slots{resource="vaccel.org/accel",state="allocated"} 1"#,
        #"vaccel_device_plugin_agent_starts_total{resource="vaccel.org/accel"} 1"#,
        #"vaccel_device_plugin_list_and_watch_streams{resource="vaccel.org/accel"} 1"#,
        "vaccel_device_plugin_allocate_duration_seconds_count",
        "vaccel_device_plugin_agent_ready_seconds_count",
        // The version the status API and the image tag say, not a placeholder.
        #"vaccel_device_plugin_build_info{version="\#(BuildInfo.version)"} 1"#,
        "vaccel_device_plugin_checkpoint_writes_total",
      ] {
        #expect(text.contains(expected), "missing \(expected)")
      }
      #expect(try await get(port, "/nope").status == 404)
    }
  }

  @Test func addressesParse() {
    #expect(MetricsServer.parse(":9464")! == ("0.0.0.0", 9464))
    #expect(MetricsServer.parse("127.0.0.1:0")! == ("127.0.0.1", 0))
    #expect(MetricsServer.parse("[::1]:9464")! == ("::1", 9464))
    #expect(MetricsServer.parse("") == nil)
    #expect(MetricsServer.parse("9464") == nil)
    #expect(MetricsServer.parse("host:99999") == nil)
  }
}
