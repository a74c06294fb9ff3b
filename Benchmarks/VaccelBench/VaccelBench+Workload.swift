import DevicePlugin
import Foundation
import KubeletEmulation
import StatusAPI
import VaccelCtlKit

enum BenchError: Error {
  case failed(String)
}

extension VaccelBench {
  /// VACCEL_BENCH_ONLY=workload: the daemon's everyday work, run once so that
  /// scripts/generate-link-order can record which functions it uses (nothing is measured). The
  /// daemon is `daemon` (a wrapper that runs it under valgrind): it starts before the kubelet
  /// and waits for it `settle / 2` seconds, registers 8 slots, admits a
  /// pod that pod-resources then lists, answers a status call and a metrics scrape, idles
  /// `settle` seconds (pod-resources polls, agent probes), recycles the slot once the pod is gone
  /// (waited for in its status), and stops on SIGTERM. Generous timeouts: under valgrind
  /// everything is 20-50 times slower.
  static func workload(daemon: String, settle: Int) async throws {
    let directory = try makeDirectory()
    let port = try freeLoopbackPort()
    let process = try startDaemon(try writeConfig(directory, slots: 8, metrics: "127.0.0.1:\(port)"), binary: daemon)
    // First no kubelet, as at a node's boot or while the kubelet restarts: the daemon serves its
    // socket, waits for the kubelet's, and its pod-resources polls fail.
    progress("workload: the daemon waits for the kubelet")
    try await waitFor(directory + "/dp/vaccel-accel.sock")
    try await Task.sleep(for: .seconds(settle / 2))  // a few failed pod-resources polls
    let kubelet = KubeletEmulator(directory: directory + "/dp")
    try await kubelet.start()
    let podResources = PodResourcesEmulator(socketPath: directory + "/pr.sock")
    try await podResources.start()
    progress("workload: waiting for the daemon to register")
    _ = try await kubelet.wait(for: "the daemon registered", timeout: .seconds(600)) { $0.healthy("vaccel.org/accel") == 8 }
    _ = try await kubelet.admit("vaccel.org/accel", [["accel-0"]])
    podResources.set("vaccel.org/accel", ["accel-0": PodContainer(namespace: "default", pod: "bench", container: "main")])
    let status = StatusClient(socketPath: directory + "/run/device-plugin.sock")
    let held = try await slot("accel-0", of: status)
    for path in ["/metrics", "/healthz", "/readyz"] {
      guard try httpStatus(port: port, path: path) == 200 else { throw BenchError.failed("GET \(path) did not answer 200") }
    }
    try await Task.sleep(for: .seconds(settle))  // idle: the daemon's polls and probes run meanwhile
    progress("workload: the pod goes")
    podResources.set("vaccel.org/accel", [:])
    // The next pod-resources poll frees the slot: its agent stops, and a fresh one takes its place
    // if the warm pool wants one.
    let deadline = ContinuousClock.now + .seconds(600)
    while true {
      let now = try await slot("accel-0", of: status)
      if !now.allocated && now.agentPid != held.agentPid && ["ready", "stopped"].contains(now.agentPhase) { break }
      guard ContinuousClock.now < deadline else { throw BenchError.failed("accel-0 was not recycled: \(now)") }
      try await Task.sleep(for: .milliseconds(100))  // the status is polled; the daemon pushes nothing
    }
    process.terminate()
    process.waitUntilExit()
    await podResources.stop()
    await kubelet.stop()
    try? FileManager.default.removeItem(atPath: directory)
  }

  static func slot(_ id: String, of status: StatusClient) async throws -> Vaccel_Deviceplugin_Status_V1_Slot {
    let slots = try await status.fetch().resources.flatMap(\.slots)
    guard let slot = slots.first(where: { $0.id == id }) else { throw BenchError.failed("no slot \(id) in the status") }
    return slot
  }

  static func loopback(port: Int) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return address
  }

  /// A loopback TCP port nothing listens on now (the daemon binds it a moment later).
  static func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = loopback(port: 0)
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound else { throw BenchError.failed("no free loopback port: errno \(errno)") }
    return Int(UInt16(bigEndian: address.sin_port))
  }

  /// The status code of `GET path` on 127.0.0.1:port (HTTP/1.0: the server closes after answering).
  static func httpStatus(port: Int, path: String) throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = loopback(port: port)
    let connected = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
    guard connected else { throw BenchError.failed("connect 127.0.0.1:\(port): errno \(errno)") }
    let request = Array("GET \(path) HTTP/1.0\r\n\r\n".utf8)
    guard write(fd, request, request.count) == request.count else { throw BenchError.failed("write: errno \(errno)") }
    var answer: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
      let count = read(fd, &buffer, buffer.count)
      guard count > 0 else { break }
      answer += buffer[0..<count]
    }
    let statusLine = String(decoding: answer.prefix { $0 != UInt8(ascii: "\r") }, as: UTF8.self)
    guard statusLine.hasPrefix("HTTP/"), let code = Int(statusLine.split(separator: " ").dropFirst().first ?? "") else {
      throw BenchError.failed("GET \(path): no HTTP status line in \(answer.count) bytes")
    }
    return code
  }
}
