import DevicePlugin
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import KubeletAPI
import Logging
import VaccelAgentAPI
import VaccelAgents
import VaccelConfig
import VaccelRPC

/// Measures the daemon where it sits on the pod-admission path, each figure against a baseline
/// taken in the same run on the same machine. Prints a Markdown table for BENCHMARKS.md.
///
///   swift build -c release   (vaccel-bench, vaccel-standin-agent, vaccel-device-plugin, vaccelctl)
///   .build/release/vaccel-bench [iterations]
@main
enum VaccelBench {
  static let binaries = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
  static let standin = binaries + "/vaccel-standin-agent"

  static func progress(_ text: String) {
    FileHandle.standardError.write(Data("bench: \(text)\n".utf8))
  }

  static func main() async throws {
    let iterations = CommandLine.arguments.dropFirst().first.flatMap(Int.init) ?? 200
    print("| # | what | median | p99 | baseline (same run) | baseline median | ratio |")
    print("|---|---|---|---|---|---|---|")
    // VACCEL_BENCH_ONLY=footprint: row 6 only, beside the Go anchor plugin.
    if ProcessInfo.processInfo.environment["VACCEL_BENCH_ONLY"] == "footprint" {
      guard let anchor = ProcessInfo.processInfo.environment["VACCEL_BENCH_GO_ANCHOR"] else {
        progress("VACCEL_BENCH_GO_ANCHOR: the Go anchor's binary (Benchmarks/GoAnchor/build OUT)")
        exit(2)
      }
      progress("footprint beside the Go anchor")
      try await footprint(goAnchor: anchor, settle: 10)
      return
    }
    // VACCEL_BENCH_ONLY=workload: no row; the daemon's everyday work under VACCEL_BENCH_DAEMON
    // (scripts/generate-link-order runs it under valgrind to record the functions it uses).
    if ProcessInfo.processInfo.environment["VACCEL_BENCH_ONLY"] == "workload" {
      guard let daemon = ProcessInfo.processInfo.environment["VACCEL_BENCH_DAEMON"] else {
        progress("VACCEL_BENCH_DAEMON: the daemon's binary, or a wrapper that runs it")
        exit(2)
      }
      try await workload(daemon: daemon, settle: 10)
      return
    }
    // VACCEL_BENCH_ONLY=burst: row 7 only, admission bursts beside the Go anchor plugin.
    if ProcessInfo.processInfo.environment["VACCEL_BENCH_ONLY"] == "burst" {
      guard let anchor = ProcessInfo.processInfo.environment["VACCEL_BENCH_GO_ANCHOR"] else {
        progress("VACCEL_BENCH_GO_ANCHOR: the Go anchor's binary (Benchmarks/GoAnchor/build OUT)")
        exit(2)
      }
      progress("admission bursts beside the Go anchor")
      try await burst(goAnchor: anchor, pods: iterations)
      return
    }
    // VACCEL_BENCH_ONLY=warm: row 1 only, at 16 and 1024 slots (issue 14, goal 2; what perf
    // records for BENCHMARKS.md).
    if ProcessInfo.processInfo.environment["VACCEL_BENCH_ONLY"] == "warm" {
      try await warmAllocate(iterations: iterations)
      try await warmAllocate(iterations: iterations, slots: 1024, warm: 16)
      // The same refill behind every hand-out at both sizes: a free slot is always left.
      try await warmAllocate(iterations: iterations, slots: 16, warm: 8)
      try await warmAllocate(iterations: iterations, slots: 1024, warm: 8)
      return
    }
    // VACCEL_BENCH_ONLY=idle: row 5 only, 8 and 1024 slots, idle for the given seconds.
    if ProcessInfo.processInfo.environment["VACCEL_BENCH_ONLY"] == "idle" {
      try await idle(slots: [8, 1024], seconds: CommandLine.arguments.count > 2 ? Int(CommandLine.arguments[2]) ?? 60 : 60)
      return
    }
    progress("warm allocate")
    try await warmAllocate(iterations: iterations)
    try await warmAllocate(iterations: iterations, slots: 1024, warm: 16)
    progress("cold allocate")
    try await coldAllocate(iterations: max(iterations / 4, 20))
    // VACCEL_BENCH_ONLY=allocate: rows 1 and 2 only (a quicker run when only they changed).
    if ProcessInfo.processInfo.environment["VACCEL_BENCH_ONLY"] == "allocate" { return }
    progress("restart to ready")
    try await restartToReady(iterations: max(iterations / 10, 10))
    progress("daemon restart")
    try await daemonRestart(iterations: 5)
    progress("registration")
    try await registration(iterations: max(iterations / 20, 10))
    progress("vaccelctl status")
    try await statusTime(slots: 8, iterations: max(iterations / 10, 20))
    try await statusTime(slots: 1024, iterations: max(iterations / 10, 20))
    progress("health propagation")
    try await healthPropagation(iterations: max(iterations / 10, 10))
    progress("idle daemons, 60 s")
    try await idle(slots: [8, 128, 1024], seconds: CommandLine.arguments.count > 2 ? Int(CommandLine.arguments[2]) ?? 60 : 60)
  }

  static var logger: Logger { Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() }) }

  static func config(_ directory: String, slots: Int, warm: Int) -> DaemonConfig {
    let agent = AgentConfig(binary: standin, restartBackoffInitial: .milliseconds(100), restartBackoffReset: .milliseconds(300))
    return DaemonConfig(
      kubelet: KubeletConfig(
        devicePluginDir: directory + "/dp", podResourcesSocket: directory + "/pr.sock",
        recheckInterval: .seconds(3600), podResourcesInterval: .seconds(3600), allocationGrace: .zero),
      runDir: directory + "/run", stateDir: directory + "/state", metricsAddress: "", agent: agent,
      resources: [ResourceConfig(slots: slots, warm: warm, agent: agent)])
  }

  /// Runs `body` with a daemon serving its plugin socket (no kubelet needed to serve).
  static func withDaemon(
    slots: Int, warm: Int, podResources: BenchPodResources = BenchPodResources(),
    _ body: (NodeDaemon, V1beta1_DevicePlugin.Client<HTTP2ClientTransport.Posix>) async throws -> Void
  ) async throws {
    let directory = try makeDirectory()
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let config = config(directory, slots: slots, warm: warm)
    let daemon = try NodeDaemon(config: config, logger: logger, podResources: podResources)
    let task = Task { try await daemon.run(gracefulShutdownSignals: []) }
    let socket = config.kubelet.devicePluginDir + "/" + config.resources[0].endpointFileName
    while !FileManager.default.fileExists(atPath: socket) { try await Task.sleep(for: .milliseconds(5)) }
    let transport = try HTTP2ClientTransport.Posix(
      target: .unixDomainSocket(path: socket, authority: "localhost"), transportSecurity: .plaintext)
    try await withGRPCClient(transport: transport) { client in
      try await body(daemon, V1beta1_DevicePlugin.Client(wrapping: client))
    }
    task.cancel()
    _ = await task.result
  }

  /// Allocates `id`; returns the agent socket the reply mounted (unix transport).
  @discardableResult
  static func allocateSlot(_ client: V1beta1_DevicePlugin.Client<HTTP2ClientTransport.Posix>, _ id: String) async throws -> String {
    let reply = try await client.allocate(.with { $0.containerRequests = [.with { $0.devicesIds = [id] }] })
    return (reply.containerResponses.first?.mounts.first?.hostPath ?? "") + "/vaccel.sock"
  }

  /// 1. Allocate handing out a warm agent vs a raw unary round trip on the same socket.
  static func warmAllocate(iterations: Int, slots: Int = 16, warm: Int? = nil) async throws {
    let warm = warm ?? slots
    let podResources = BenchPodResources()
    var allocate = Sample()
    var baseline = Sample()
    try await withDaemon(slots: slots, warm: warm, podResources: podResources) { daemon, client in
      let manager = daemon.managers[0]
      for _ in 0..<20 { _ = try await client.getDevicePluginOptions(V1beta1_Empty()) }
      var done = 0
      while done < iterations {
        progress("round at \(done)")
        // Whichever slots the pool keeps warm (it refills the lowest free ones).
        let warmSlots = await manager.slotStates.filter { $0.agent.wanted && !$0.agent.handedOut }.map(\.id)
        for id in warmSlots {
          _ = try await manager.waitForSlot(id, timeout: .seconds(30)) { $0.agent.phase == .ready && !$0.agent.handedOut }
        }
        for id in warmSlots where done < iterations {
          let start = ContinuousClock.now
          _ = try await client.getDevicePluginOptions(V1beta1_Empty())
          baseline.add(.now - start)
          let begin = ContinuousClock.now
          try await allocateSlot(client, id)
          allocate.add(.now - begin)
          done += 1
        }
        // Free everything; the pool refills with fresh agents (not measured).
        try await daemon.podResources.pollOnce()
      }
    }
    row("1", "Allocate, warm agent, \(slots) slots", allocate, "unary gRPC round trip, same socket", baseline)
  }

  /// 2. Allocate for a slot with no warm agent vs a unary round trip on the same socket: it
  /// answers without waiting for the agent (issue 10: readiness lives in PreStartContainer).
  /// 2b. That container's PreStartContainer, called as soon as Allocate returned, vs the
  /// stand-in's own exec-to-ready.
  static func coldAllocate(iterations: Int) async throws {
    var allocate = Sample()
    var roundTrip = Sample()
    var preStart = Sample()
    var execReady = Sample()
    var execSession = Sample()
    // Where PreStartContainer's time goes, on the wall clock: Allocate's reply → the agent
    // spawned (its status's startedAt) → its socket bound (the socket's mtime) → PreStart's reply.
    var replyToSpawn = Sample(), spawnToBind = Sample(), bindToReady = Sample(), readyToReply = Sample()
    // The daemon's own spawn → probe passed, per start (agent_ready_seconds_sum grows by it).
    func readySum(_ daemon: NodeDaemon) -> Double {
      let text = daemon.metrics.registry.emitToString()
      guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("vaccel_device_plugin_agent_ready_seconds_sum") }) else { return 0 }
      return Double(line.split(separator: " ").last ?? "") ?? 0
    }
    try await withDaemon(slots: 4, warm: 0) { daemon, client in
      for _ in 0..<20 { _ = try await client.getDevicePluginOptions(V1beta1_Empty()) }
      for n in 0..<iterations {
        let id = "accel-\(n % 4)"
        execReady.add(try execToReady())
        execSession.add(try execToFirstSession())
        var begin = ContinuousClock.now
        _ = try await client.getDevicePluginOptions(V1beta1_Empty())
        roundTrip.add(.now - begin)
        begin = .now
        let socket = try await allocateSlot(client, id)
        allocate.add(.now - begin)
        let replied = Date()
        let sumBefore = readySum(daemon)
        begin = .now
        _ = try await client.preStartContainer(.with { $0.devicesIds = [id] })
        preStart.add(.now - begin)
        let done = Date()
        var info = stat()
        if let spawned = await daemon.managers[0].slotStates[n % 4].agent.startedAt, stat(socket, &info) == 0 {
          let bound = Date(timeIntervalSince1970: Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9)
          let ready = spawned.addingTimeInterval(readySum(daemon) - sumBefore)
          replyToSpawn.add(.seconds(spawned.timeIntervalSince(replied)))
          spawnToBind.add(.seconds(bound.timeIntervalSince(spawned)))
          bindToReady.add(.seconds(ready.timeIntervalSince(bound)))
          readyToReply.add(.seconds(done.timeIntervalSince(ready)))
        }
        try await daemon.podResources.pollOnce()  // frees it: the next Allocate starts cold again
        _ = try await daemon.managers[0].waitForSlot(id, timeout: .seconds(30)) { $0.agent.phase == .stopped }
      }
    }
    row("2", "Allocate, no warm agent (does not wait for it)", allocate, "unary gRPC round trip, same socket", roundTrip)
    row("2b", "PreStartContainer right after that Allocate (waits for the agent)", preStart, "stand-in exec → ready line", execReady)
    row("2b", "the same PreStartContainer", preStart, "stand-in exec → first session answered", execSession)
    print("|    | 2b's parts (medians): Allocate reply → agent spawned \(ms(replyToSpawn.median)), spawned → socket bound \(ms(spawnToBind.median)), "
      + "bound → probe passed \(ms(bindToReady.median)), probe passed → PreStart reply \(ms(readyToReply.median)) | | | | | |")
  }

  /// The stand-in alone: exec until it answers its first CreateSession, asked with plain
  /// blocking sockets as fast as the machine allows (what the daemon's readiness means; the
  /// ready line comes about 2 ms before the stand-in can answer).
  static func execToFirstSession() throws -> Duration {
    let directory = try makeDirectory()
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let path = "\(directory)/a.sock"
    let process = Process()
    process.executableURL = URL(fileURLWithPath: standin)
    process.arguments = ["-a", "unix://\(path)"]
    process.standardError = FileHandle.nullDevice
    process.standardOutput = FileHandle.nullDevice
    let start = ContinuousClock.now
    try process.run()
    defer {
      process.terminate()
      process.waitUntilExit()
    }
    // Request { service = 1, method = 2 } in a ttrpc frame: stream 1, type request.
    let body = Array([0x0a, 30] + Array("vaccel.sync.agent.AgentService".utf8) + [0x12, 13] + Array("CreateSession".utf8))
    let frame: [UInt8] = [0, 0, 0, UInt8(body.count), 0, 0, 0, 1, 1, 0] + body
    while ContinuousClock.now - start < .seconds(10) {
      let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
      defer { close(fd) }
      var address = sockaddr_un()
      address.sun_family = sa_family_t(AF_UNIX)
      withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: path.utf8.prefix($0.count - 1)) }
      let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
      }
      guard connected == 0, write(fd, frame, frame.count) == frame.count else { continue }
      var header = [UInt8](repeating: 0, count: 10)
      if read(fd, &header, 10) == 10, header[8] == 2 { return ContinuousClock.now - start }
    }
    throw CocoaError(.fileReadUnknown)
  }

  /// The stand-in alone: exec until it prints its ready line (its socket accepts by then).
  static func execToReady() throws -> Duration {
    let directory = try makeDirectory()
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: standin)
    process.arguments = ["-a", "unix://\(directory)/a.sock"]
    let pipe = Pipe()
    process.standardError = pipe
    let start = ContinuousClock.now
    try process.run()
    var seen = Data()
    while !String(decoding: seen, as: UTF8.self).contains("Listening on") {
      let chunk = pipe.fileHandleForReading.availableData
      if chunk.isEmpty { break }
      seen.append(chunk)
    }
    let elapsed = ContinuousClock.now - start
    process.terminate()
    process.waitUntilExit()
    return elapsed
  }

  /// 2+. An agent killed with SIGKILL until its slot is ready again.
  static func restartToReady(iterations: Int) async throws {
    var restart = Sample()
    var baseline = Sample()
    try await withDaemon(slots: 1, warm: 0) { daemon, client in
      try await allocateSlot(client, "accel-0")
      let manager = daemon.managers[0]
      for _ in 0..<iterations {
        baseline.add(try execToReady())
        let before = try await manager.waitForSlot("accel-0", timeout: .seconds(30)) { $0.agent.phase == .ready }
        let begin = ContinuousClock.now
        kill(before.agent.pid!, SIGKILL)
        _ = try await manager.waitForSlot("accel-0", timeout: .seconds(30)) {
          $0.agent.phase == .ready && $0.agent.pid != before.agent.pid
        }
        restart.add(.now - begin)
        // Let the crash count settle so every kill is a first crash (immediate restart).
        _ = try await manager.waitForSlot("accel-0", timeout: .seconds(120)) { $0.agent.consecutiveFailures == 0 }
      }
    }
    row("2+", "agent SIGKILL → ready again", restart, "stand-in exec → ready line", baseline)
  }

  /// 3+. The daemon SIGKILLed together with a held slot's agent, then started again: until a
  /// ttrpc session works on that slot's socket. Baseline: the daemon's start until it serves.
  static func daemonRestart(iterations: Int) async throws {
    let directory = try makeDirectory()
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let configPath = try writeConfig(directory, slots: 4)
    var restart = Sample()
    var baseline = Sample()
    for _ in 0..<iterations {
      let begin = ContinuousClock.now
      let daemon = try startDaemon(configPath)
      try await waitFor(directory + "/dp/vaccel-accel.sock")
      baseline.add(.now - begin)
      let transport = try HTTP2ClientTransport.Posix(
        target: .unixDomainSocket(path: directory + "/dp/vaccel-accel.sock", authority: "localhost"), transportSecurity: .plaintext)
      // The socket file exists from bind(), a moment before the daemon listens: retry briefly.
      let socket = try await withGRPCClient(transport: transport) { client in
        let plugin = V1beta1_DevicePlugin.Client(wrapping: client)
        var attempt = 1
        while true {
          do {
            return try await allocateSlot(plugin, "accel-0")
          } catch where attempt < 400 {
            attempt += 1
            try await Task.sleep(for: .milliseconds(5))
          }
        }
      }
      try await waitForCheckpoint(directory) { $0.contains("\"allocated\":true") }
      let agents = ProcessInfoReader.processes(withArgument: "unix://" + socket)
      kill(daemon.processIdentifier, SIGKILL)
      daemon.waitUntilExit()
      for pid in agents { kill(pid, SIGKILL) }
      while !ProcessInfoReader.processes(withArgument: "unix://" + socket).isEmpty { try await Task.sleep(for: .milliseconds(5)) }

      let start = ContinuousClock.now
      let again = try startDaemon(configPath)
      while (try? await sessionWorks(socket)) != true { try await Task.sleep(for: .milliseconds(5)) }
      restart.add(.now - start)
      again.terminate()
      again.waitUntilExit()
      try? FileManager.default.removeItem(atPath: directory + "/state/checkpoint.json")
    }
    row("3+", "daemon SIGKILL → restart → held slot serves a session", restart, "daemon start → plugin socket served", baseline)
  }

  static func sessionWorks(_ socket: String) async throws -> Bool {
    try await TTRPCClient.withConnection(to: .unix(path: socket), timeout: .seconds(1)) { connection in
      _ = try await connection.call(
        service: VaccelAgentService.sync, method: "CreateSession", request: Vaccel_Session_CreateRequest(),
        as: Vaccel_Session_CreateResponse.self)
      return true
    }
  }

  /// `warm`: nil leaves the config's default.
  static func writeConfig(_ directory: String, slots: Int, warm: Int? = nil, metrics: String = "127.0.0.1:0") throws -> String {
    let path = directory + "/config.yaml"
    try """
      version: v1
      kubelet: {devicePluginDir: \(directory)/dp, podResourcesSocket: \(directory)/pr.sock, allocationGrace: 0s}
      runDir: \(directory)/run
      stateDir: \(directory)/state
      metrics: {address: "\(metrics)"}
      agent: {binary: \(standin)}
      resources: [{name: vaccel.org/accel, slots: \(slots)\(warm.map { ", warm: \($0)" } ?? "")}]
      """.write(toFile: path, atomically: true, encoding: .utf8)
    return path
  }

  static func startDaemon(_ configPath: String, binary: String = binaries + "/vaccel-device-plugin") throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: binary)
    process.arguments = ["--config", configPath, "--log-level", "error"]
    try process.run()
    return process
  }

  static func waitFor(_ path: String) async throws {
    while !FileManager.default.fileExists(atPath: path) { try await Task.sleep(for: .milliseconds(2)) }
  }

  static func waitForCheckpoint(_ directory: String, _ predicate: (String) -> Bool) async throws {
    while !predicate((try? String(contentsOfFile: directory + "/state/checkpoint.json", encoding: .utf8)) ?? "") {
      try await Task.sleep(for: .milliseconds(5))
    }
  }

  /// 4. An agent killed until ListAndWatch says Unhealthy, and its restart until it says
  /// Healthy again, as a kubelet holding the stream sees it.
  static func healthPropagation(iterations: Int) async throws {
    var down = Sample()
    var up = Sample()
    try await withDaemon(slots: 1, warm: 0) { daemon, client in
      try await allocateSlot(client, "accel-0")
      let manager = daemon.managers[0]
      let (updates, continuation) = AsyncStream.makeStream(of: Bool.self)
      let stream = Task {
        try await client.listAndWatch(V1beta1_Empty()) { response in
          for try await message in response.messages {
            continuation.yield(message.devices.first?.health == "Healthy")
          }
        }
      }
      var health = updates.makeAsyncIterator()
      _ = await health.next()
      for _ in 0..<iterations {
        let before = try await manager.waitForSlot("accel-0", timeout: .seconds(30)) {
          $0.agent.phase == .ready && $0.agent.consecutiveFailures == 0 && $0.healthy
        }
        let begin = ContinuousClock.now
        kill(before.agent.pid!, SIGKILL)
        while await health.next() != false {}
        down.add(.now - begin)
        let back = ContinuousClock.now
        while await health.next() != true {}
        up.add(.now - back)
      }
      stream.cancel()
    }
    row("4", "agent SIGKILL → Unhealthy in ListAndWatch", down, "—", Sample())
    row("4", "… → Healthy again in ListAndWatch", up, "—", Sample())
  }

  /// 5. Idle daemons (agents not counted) side by side: RSS, and CPU over `seconds`. With
  /// `VACCEL_BENCH_STATIC_DAEMON` set to a `--static-swift-stdlib` build (what the Dockerfile
  /// ships), that binary idles beside the others in the same run.
  static func idle(slots: [Int], seconds: Int) async throws {
    var builds = [("", binaries + "/vaccel-device-plugin")]
    if let staticBuild = ProcessInfo.processInfo.environment["VACCEL_BENCH_STATIC_DAEMON"] {
      builds.append((", static build", staticBuild))
    }
    var daemons: [(String, Int, Process, String)] = []
    for (label, binary) in builds {
      for count in slots {
        let directory = try makeDirectory()
        let process = try startDaemon(try writeConfig(directory, slots: count), binary: binary)
        try await waitFor(directory + "/dp/vaccel-accel.sock")
        daemons.append((label, count, process, directory))
      }
    }
    try await Task.sleep(for: .seconds(2))  // settle after start
    let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
    let before = daemons.map { cpuTicks($0.2.processIdentifier) }
    try await Task.sleep(for: .seconds(seconds))  // the idle period being measured
    for (index, (label, count, process, directory)) in daemons.enumerated() {
      let cpu = Double(cpuTicks(process.processIdentifier) - before[index]) / ticks / Double(seconds) * 100
      let rss = residentMiB(process.processIdentifier)
      process.terminate()
      process.waitUntilExit()
      try? FileManager.default.removeItem(atPath: directory)
      print("| 5 | daemon idle \(seconds) s, \(count) slots\(label) | RSS \(String(format: "%.1f MiB", rss)) | CPU \(String(format: "%.2f%%", cpu)) of a core | | | |")
    }
  }

  static func cpuTicks(_ pid: Int32) -> Int {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
      let close = stat.lastIndex(of: ")")
    else { return 0 }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    return (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0)  // utime + stime
  }

  /// VmRSS in MiB.
  static func residentMiB(_ pid: Int32) -> Double { statusMiB(pid, "VmRSS") }

  /// A /proc/<pid>/status field in MiB (its figure is in KiB).
  static func statusMiB(_ pid: Int32, _ field: String) -> Double {
    let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
    let line = status.split(separator: "\n").first { $0.hasPrefix(field + ":") } ?? ""
    return (Double(line.split(separator: " ").dropFirst().first ?? "") ?? 0) / 1024
  }

  /// The Go anchor plugin (Benchmarks/GoAnchor) registering `devices` devices in `directory`/dp.
  static func startGoAnchor(_ binary: String, directory: String, devices: Int) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: binary)
    process.arguments = ["-dir", directory + "/dp", "-devices", "\(devices)"]
    process.standardOutput = FileHandle.nullDevice
    try process.run()
    return process
  }

  static func row(_ number: String, _ what: String, _ sample: Sample, _ baselineName: String, _ baseline: Sample) {
    let base = baseline.values.isEmpty ? "—" : ms(baseline.median)
    let ratio = baseline.values.isEmpty ? "—" : ratio(sample.median, baseline.median)
    print("| \(number) | \(what) (n=\(sample.values.count)) | \(ms(sample.median)) | \(ms(sample.p99)) | \(baselineName) | \(base) | \(ratio) |")
  }

  static func makeDirectory() throws -> String {
    var template = Array("/tmp/vbench.XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else { throw CocoaError(.fileWriteUnknown) }
    return String(cString: made)
  }
}

/// pod-resources that reports nothing held: every poll frees every slot.
struct BenchPodResources: PodResourcesListing {
  func list() async throws -> [String: [String: Holder]] { [:] }
}
