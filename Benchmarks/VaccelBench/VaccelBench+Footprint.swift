import Foundation
import KubeletEmulation

extension VaccelBench {
  /// 6. Idle footprint beside the Go anchor (Benchmarks/GoAnchor, Debian's grpc-go, the
  /// kubelet's own gRPC library), in the same conditions: each process has its own kubelet
  /// emulation, registers 8 devices, and gets one admission (GetPreferredAllocation-free:
  /// Allocate then PreStartContainer). Each daemon's pod-resources lists that pod, as a real
  /// kubelet's would (the anchor does not ask). Then `settle` seconds idle, then VmRSS read 5
  /// times a second apart (median). Agents are separate processes and not counted.
  ///   VACCEL_BENCH_ONLY=footprint VACCEL_BENCH_GO_ANCHOR=<binary> [VACCEL_BENCH_STATIC_DAEMON=<binary>]
  static func footprint(goAnchor: String, settle: Int) async throws {
    var measured: [(label: String, process: Process, kubelet: KubeletEmulator, podResources: PodResourcesEmulator?, directory: String)] = []
    var daemons = [("vaccel-device-plugin beside this bench", binaries + "/vaccel-device-plugin")]
    if let other = ProcessInfo.processInfo.environment["VACCEL_BENCH_STATIC_DAEMON"] {
      daemons.append(("vaccel-device-plugin from VACCEL_BENCH_STATIC_DAEMON", other))
    }
    for (label, binary) in daemons {
      let directory = try makeDirectory()
      let kubelet = KubeletEmulator(directory: directory + "/dp")
      try await kubelet.start()
      let podResources = PodResourcesEmulator(socketPath: directory + "/pr.sock")
      try await podResources.start()
      let process = try startDaemon(try writeConfig(directory, slots: 8), binary: binary)
      _ = try await kubelet.wait(for: "\(label) registered", timeout: .seconds(30)) { $0.healthy("vaccel.org/accel") == 8 }
      _ = try await kubelet.admit("vaccel.org/accel", [["accel-0"]])
      podResources.set("vaccel.org/accel", ["accel-0": PodContainer(namespace: "default", pod: "bench", container: "main")])
      measured.append((label, process, kubelet, podResources, directory))
    }
    let directory = try makeDirectory()
    let kubelet = KubeletEmulator(directory: directory + "/dp")
    try await kubelet.start()
    let anchor = try startGoAnchor(goAnchor, directory: directory, devices: 8)
    _ = try await kubelet.wait(for: "the Go anchor registered", timeout: .seconds(30)) { $0.healthy("vaccel.org/anchor") == 8 }
    _ = try await kubelet.admit("vaccel.org/anchor", [["anchor-0"]])
    measured.append(("Go anchor (grpc-go)", anchor, kubelet, nil, directory))

    try await Task.sleep(for: .seconds(settle))  // the idle period before the reading
    var samples = Array(repeating: [Double](), count: measured.count)
    for _ in 0..<5 {
      for (index, entry) in measured.enumerated() { samples[index].append(residentMiB(entry.process.processIdentifier)) }
      try await Task.sleep(for: .seconds(1))  // readings a second apart
    }
    func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
    let anchorRSS = median(samples.last!)
    for (index, entry) in measured.enumerated() {
      let rss = median(samples[index])
      let split = ["RssAnon", "RssFile"].map { String(format: "%@ %.1f", $0, statusMiB(entry.process.processIdentifier, $0)) }.joined(separator: ", ")
      print("| 6 | idle RSS, 8 slots, registered, one admission: \(entry.label) (\(split)) | \(String(format: "%.1f MiB", rss)) | max \(String(format: "%.1f", samples[index].max() ?? 0)) | Go anchor | \(String(format: "%.1f MiB", anchorRSS)) | \(String(format: "%.2f×", rss / anchorRSS)) |")
      entry.process.terminate()
      entry.process.waitUntilExit()
      await entry.podResources?.stop()
      await entry.kubelet.stop()
      try? FileManager.default.removeItem(atPath: entry.directory)
    }
  }
}
