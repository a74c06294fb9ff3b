import DevicePlugin
import Foundation
import KubeletEmulation
import VaccelCtlKit

extension VaccelBench {
  /// Exec to exit of `binary arguments`: the floor any process-based figure stands on.
  static func execTime(_ binary: String, _ arguments: [String]) throws -> Duration {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: binary)
    process.arguments = arguments
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    let begin = ContinuousClock.now
    try process.run()
    process.waitUntilExit()
    return .now - begin
  }

  /// 3. The daemon binary started until the kubelet has it registered with every device
  /// healthy; then a kubelet restart (sockets wiped, new kubelet.sock) until registered again.
  static func registration(iterations: Int, slots: Int = 8) async throws {
    var start = Sample(), startBaseline = Sample()
    var restart = Sample(), restartBaseline = Sample()
    for _ in 0..<iterations {
      let directory = try makeDirectory()
      defer { try? FileManager.default.removeItem(atPath: directory) }
      let kubelet = KubeletEmulator(directory: directory + "/dp")
      try await kubelet.start()
      startBaseline.add(try execTime(binaries + "/vaccel-device-plugin", ["--version"]))
      let config = try writeConfig(directory, slots: slots)
      let begin = ContinuousClock.now
      let daemon = try startDaemon(config)
      _ = try await kubelet.wait(for: "registration") { $0.registrations == 1 && $0.healthy("vaccel.org/accel") == slots }
      start.add(.now - begin)

      // Re-registration is driven by inotify on the device-plugins folder (the re-check is 5 s).
      let again = ContinuousClock.now
      try await kubelet.restart()
      restartBaseline.add(.now - again)
      _ = try await kubelet.wait(for: "re-registration") { $0.registrations == 2 && $0.healthy("vaccel.org/accel") == slots }
      restart.add(.now - again)
      daemon.terminate()
      daemon.waitUntilExit()
      await kubelet.stop()
    }
    row("3", "daemon exec → registered, \(slots) slots healthy", start, "`vaccel-device-plugin --version` exec to exit", startBaseline)
    row("3", "kubelet restart → registered again", restart, "the kubelet emulation's own restart", restartBaseline)
  }

  /// 6. `vaccelctl status` as an operator runs it (a new process each time) against a daemon
  /// with `slots` slots, against `vaccelctl --version`; plus the status RPC alone.
  static func statusTime(slots: Int, iterations: Int) async throws {
    var wall = Sample(), baseline = Sample(), rpc = Sample()
    try await withDaemon(slots: slots, warm: min(16, slots)) { daemon, _ in
      let socket = daemon.config.statusSocket
      try await waitFor(socket)
      let client = StatusClient(socketPath: socket)
      for _ in 0..<5 { _ = try await client.fetch() }
      for _ in 0..<iterations {
        baseline.add(try execTime(binaries + "/vaccelctl", ["--version"]))
        wall.add(try execTime(binaries + "/vaccelctl", ["status", "--socket", socket]))
        let begin = ContinuousClock.now
        _ = try await client.fetch()
        rpc.add(.now - begin)
      }
    }
    row("6", "`vaccelctl status` wall time, \(slots) slots", wall, "`vaccelctl --version` exec to exit", baseline)
    row("6", "status RPC alone (in-process client), \(slots) slots", rpc, "—", Sample())
  }
}
