import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import KubeletAPI
import KubeletEmulation

extension VaccelBench {
  /// 7. Admission bursts (issue 14, goal 3): `pods` fresh pods in a row, one admission each as
  /// the kubelet makes it on its one connection to the plugin: GetPreferredAllocation (every
  /// device available, listed from device i mod slots on), Allocate of the preferred device,
  /// PreStartContainer. The previous pods are gone, as the kubelet sees it; for the daemon each
  /// admission is a new allocation with an agent of its own (a warm one where it has one). The daemon (the
  /// release binary beside this bench) and the Go anchor each run as their own process with
  /// their own kubelet emulation. Prints Allocate alone and the whole admission, p50 and p99.
  static func burst(goAnchor: String, pods: Int) async throws {
    for slots in [8, 1024] {
      progress("the Go anchor, \(slots) devices")
      let measured = try await burstAgainstAnchor(goAnchor: goAnchor, slots: slots, pods: pods)
      row("7", "Go anchor: GetPreferredAllocation + Allocate + PreStart, \(pods) admissions, \(slots) devices", measured.admission, "—", Sample())
      for warm in [0, 2] {
        progress("the daemon, \(slots) slots, warm \(warm)")
        let directory = try makeDirectory()
        let kubelet = KubeletEmulator(directory: directory + "/dp")
        try await kubelet.start()
        let process = try startDaemon(try writeConfig(directory, slots: slots, warm: warm))
        defer {
          process.terminate()
          process.waitUntilExit()
          try? FileManager.default.removeItem(atPath: directory)
        }
        _ = try await kubelet.wait(for: "the daemon registered", timeout: .seconds(60)) { $0.healthy("vaccel.org/accel") == slots }
        let client = try await kubelet.client("vaccel.org/accel")
        let devices = (0..<slots).map { "accel-\($0)" }
        let (allocate, admission) = try await admissions(client, devices: devices, pods: pods)
        await kubelet.stop()
        let what = "\(pods) admissions, \(slots) slots, warm \(warm)"
        row("7", "Allocate, \(what)", allocate, "Go anchor, Allocate", measured.allocate)
        row("7", "whole admission, \(what)", admission, "Go anchor, admission", measured.admission)
      }
    }
  }

  static func burstAgainstAnchor(goAnchor: String, slots: Int, pods: Int) async throws -> (allocate: Sample, admission: Sample) {
    let directory = try makeDirectory()
    let kubelet = KubeletEmulator(directory: directory + "/dp")
    try await kubelet.start()
    let process = try startGoAnchor(goAnchor, directory: directory, devices: slots)
    defer {
      process.terminate()
      process.waitUntilExit()
      try? FileManager.default.removeItem(atPath: directory)
    }
    _ = try await kubelet.wait(for: "the Go anchor registered", timeout: .seconds(30)) { $0.healthy("vaccel.org/anchor") == slots }
    let client = try await kubelet.client("vaccel.org/anchor")
    let result = try await admissions(client, devices: (0..<slots).map { "anchor-\($0)" }, pods: pods)
    await kubelet.stop()
    return result
  }

  /// The kubelet's three calls per pod, timed on the client's clock.
  static func admissions(
    _ client: V1beta1_DevicePlugin.Client<HTTP2ClientTransport.Posix>, devices: [String], pods: Int
  ) async throws -> (allocate: Sample, admission: Sample) {
    var allocate = Sample()
    var admission = Sample()
    let clock = ContinuousClock()
    for pod in 0..<pods {
      // The previous pods are gone: every device is available, listed from this pod's turn on.
      let turn = pod % devices.count
      let available = Array(devices[turn...] + devices[..<turn])
      let start = clock.now
      let preferred = try await client.getPreferredAllocation(.with {
        $0.containerRequests = [.with {
          $0.availableDeviceIds = available
          $0.allocationSize = 1
        }]
      })
      let device = preferred.containerResponses.first?.deviceIds.first ?? available[0]
      let allocateStart = clock.now
      _ = try await client.allocate(.with { $0.containerRequests = [.with { $0.devicesIds = [device] }] })
      allocate.add(clock.now - allocateStart)
      _ = try await client.preStartContainer(.with { $0.devicesIds = [device] })
      admission.add(clock.now - start)
    }
    return (allocate, admission)
  }
}
