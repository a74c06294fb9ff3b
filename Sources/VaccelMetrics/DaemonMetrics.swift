public import Prometheus
import Synchronization

/// Every metric the daemon exports, on one registry that is injected (no global metrics system).
/// Labels are bounded: resource names from the config, a few fixed reasons and states.
public final class DaemonMetrics: Sendable {
  public let registry: PrometheusCollectorRegistry
  private static let prefix = "vaccel_device_plugin_"
  /// Latency buckets for Allocate and agent start: sub-millisecond to tens of seconds.
  public static let buckets: [Duration] = [
    .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
    .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
    .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10), .seconds(30),
  ]
  private let readiness = Mutex<[String: (registered: Bool, streams: Int)]>([:])

  public init(version: String, registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
    self.registry = registry
    registry.makeGauge(
      descriptor: Self.descriptor("build_info", "Build of the running daemon (always 1)."), labels: [("version", version)]
    ).set(Double(1))
  }

  /// `vaccel_device_plugin_<name>`: the unit, where there is one, is part of `name`.
  private static func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
    MetricNameDescriptor(metricName: prefix + name, unitName: "", helpText: help)
  }

  private func counter(_ name: String, _ labels: [(String, String)], _ help: String) -> Counter {
    registry.makeCounter(descriptor: Self.descriptor(name, help), labels: labels)
  }

  private func gauge(_ name: String, _ labels: [(String, String)], _ help: String) -> Gauge {
    registry.makeGauge(descriptor: Self.descriptor(name, help), labels: labels)
  }

  private func histogram(_ name: String, _ labels: [(String, String)], _ help: String) -> DurationHistogram {
    registry.makeDurationHistogram(descriptor: Self.descriptor(name, help), labels: labels, buckets: Self.buckets)
  }

  // MARK: Registration

  public func registration(resource: String, registered: Bool) {
    readiness.withLock { $0[resource, default: (false, 0)].registered = registered }
    gauge("registered", [("resource", resource)], "1 while registered with the kubelet.").set(registered ? Double(1) : Double(0))
    if registered {
      counter("registrations_total", [("resource", resource)], "Successful registrations with the kubelet.").increment()
    }
  }

  public func listAndWatch(resource: String, streams: Int) {
    readiness.withLock { $0[resource, default: (false, 0)].streams = streams }
    gauge("list_and_watch_streams", [("resource", resource)], "Open ListAndWatch streams.").set(Double(streams))
  }

  // MARK: Slots and allocations

  public func slots(resource: String, byState counts: [String: Int]) {
    for (state, count) in counts {
      gauge("slots", [("resource", resource), ("state", state)], "Slots by state.").set(Double(count))
    }
  }

  public func allocation(resource: String, duration: Duration, error: String?) {
    histogram("allocate_duration_seconds", [("resource", resource)], "Allocate latency, as the kubelet sees it.")
      .record(duration)
    if let error {
      counter("allocation_errors_total", [("resource", resource), ("code", error)], "Allocate calls that failed.")
        .increment()
    } else {
      counter("allocations_total", [("resource", resource)], "Allocate calls that succeeded.").increment()
    }
  }

  // MARK: Agents

  public func agentStarted(resource: String) {
    counter("agent_starts_total", [("resource", resource)], "Agent processes started.").increment()
  }

  public func agentReady(resource: String, after duration: Duration) {
    histogram("agent_ready_seconds", [("resource", resource)], "From agent start to its probe passing.")
      .record(duration)
  }

  /// `reason`: exited, signaled, unknown (adopted), not_ready.
  public func agentExited(resource: String, reason: String, restarting: Bool) {
    counter("agent_exits_total", [("resource", resource), ("reason", reason)], "Agent processes that ended unexpectedly.")
      .increment()
    if restarting {
      counter("agent_restarts_total", [("resource", resource)], "Agent restarts after an unexpected exit.").increment()
    }
  }

  // MARK: Pod resources, checkpoint

  /// `result`: ok, error, rate_limited.
  public func podResourcesPoll(result: String) {
    counter("pod_resources_polls_total", [("result", result)], "pod-resources List calls.").increment()
  }

  public func checkpointWrite(ok: Bool) {
    counter("checkpoint_writes_total", [("result", ok ? "ok" : "error")], "Checkpoint writes.").increment()
  }

  // MARK: Readiness

  /// Resources that must be ready; until then, not registered and no stream.
  public func declareResources(_ names: [String]) {
    readiness.withLock { state in
      for name in names where state[name] == nil { state[name] = (false, 0) }
    }
  }

  /// nil when every resource is registered with the kubelet and serving ListAndWatch;
  /// otherwise what is missing, per resource.
  public var notReady: [String]? {
    let missing = readiness.withLock { state in
      state.sorted { $0.key < $1.key }.compactMap { name, value -> String? in
        if !value.registered { return "\(name): not registered" }
        if value.streams == 0 { return "\(name): no ListAndWatch stream" }
        return nil
      }
    }
    return missing.isEmpty ? nil : missing
  }

  public func exposition() -> [UInt8] {
    var buffer: [UInt8] = []
    registry.emit(into: &buffer)
    return buffer
  }
}
