import DevicePlugin
import Foundation
import Testing
import VaccelAgents

/// The executable's contract with whoever starts it: exit codes and one clear line.
@Suite("vaccel-device-plugin executable")
struct DaemonExecutableTests {
  var binary: String { URL(fileURLWithPath: Fixtures.standinAgent).deletingLastPathComponent().path + "/vaccel-device-plugin" }

  @Test(arguments: [
    ("version: v1\nresources: [{name: vaccel.org/accel, slots: 0}]\n", "resources[0].slots"),
    ("version: v1\nresources: [{name: accel}]\n", "resources[0].name"),
    ("version: v1\nrunDirectory: /x\n", "runDirectory"),
    ("version: v1\nresources: [\n", "not valid YAML"),
  ])
  func aBadConfigExits2WithOneLineNamingTheField(_ yaml: String, _ field: String) async throws {
    let directory = try TestDirectory()
    let config = directory.sub("config.yaml")
    try yaml.write(toFile: config, atomically: true, encoding: .utf8)
    let result = try await ChildProcess.run(binary, ["--config", config])
    #expect(result.status == 2)
    #expect(result.error.contains(field), "\(result.error)")
    #expect(result.error.hasPrefix("vaccel-device-plugin: invalid configuration: \(config): "), "\(result.error)")
  }

  @Test func aBadFlagExits2() async throws {
    let result = try await ChildProcess.run(binary, ["--bogus"])
    #expect(result.status == 2)
    #expect(result.error.contains("Unknown option '--bogus'"))
  }

  /// The flags are parsed by hand (Flags.swift): each form an operator may type, and each
  /// mistake, through the real binary.
  @Test func helpListsEveryOptionAndExits0() async throws {
    let result = try await ChildProcess.run(binary, ["--help"])
    #expect(result.status == 0)
    for flag in [
      "--config <file>", "--device-plugin-dir <folder>", "--pod-resources-socket <socket>", "--run-dir <folder>",
      "--state-dir <folder>", "--log-level <level>", "--log-format <format>", "--metrics-address <address>",
      "--status-socket <socket>", "--version", "-h, --help",
    ] {
      #expect(result.output.contains(flag), "\(flag) missing from --help")
    }
    let host = try await ChildProcess.run(binary, ["agent-host", "-h"])
    #expect(host.status == 0 && host.output.contains("--stop-grace <seconds>"), "\(host.output)")
  }

  @Test func versionPrintsOneLine() async throws {
    let result = try await ChildProcess.run(binary, ["--version"])
    #expect(result.status == 0)
    #expect(result.output.split(separator: "\n").count == 1 && !result.output.isEmpty, "\(result.output)")
  }

  @Test(arguments: [
    (["--config"], "Missing value for '--config <file>'"),
    (["--config", "--log-level", "debug"], "Missing value for '--config <file>'"),
    (["extra"], "Unexpected argument 'extra'"),
    (["--"], "Unexpected argument '--'"),
    (["agent-host", "--version"], "Unknown option '--version'"),
    (["agent-host", "--stop-grace", "soon"], "--stop-grace soon is not 0 to 300 seconds"),
  ])
  func aUsageMistakeExits2NamingIt(_ arguments: [String], _ message: String) async throws {
    let result = try await ChildProcess.run(binary, arguments)
    #expect(result.status == 2)
    #expect(result.error.hasPrefix("Error: \(message)\n"), "\(result.error)")
    #expect(result.error.contains("Usage: vaccel-device-plugin"), "\(result.error)")
  }

  /// `--name=value` is read as `--name value`, and a flag given twice takes its last value.
  @Test func equalsFormAndTheLastValueCount() async throws {
    let equals = try await ChildProcess.run(binary, ["--config=/nonexistent/vaccel.yaml"])
    #expect(equals.status == 2)
    #expect(equals.error.contains("/nonexistent/vaccel.yaml: no such file"), "\(equals.error)")
    let twice = try await ChildProcess.run(binary, ["--config", "/nonexistent/first.yaml", "--config", "/nonexistent/second.yaml"])
    #expect(twice.status == 2)
    #expect(twice.error.contains("/nonexistent/second.yaml") && !twice.error.contains("first.yaml"), "\(twice.error)")
  }

  @Test func aMissingConfigFileExits2() async throws {
    let result = try await ChildProcess.run(binary, ["--config", "/nonexistent/vaccel.yaml"])
    #expect(result.status == 2)
    #expect(result.error.contains("/nonexistent/vaccel.yaml: no such file"), "\(result.error)")
  }

  @Test func aConfigPathThatIsAFolderExits2SayingSo() async throws {
    let directory = try TestDirectory()
    let result = try await ChildProcess.run(binary, ["--config", directory.path])
    #expect(result.status == 2)
    #expect(result.error.contains("\(directory.path): is a folder, not a config file"), "\(result.error)")
  }

  /// A busy metrics port names the setting and the address, not NIO's syscall.
  @Test func aBusyMetricsPortExits1NamingTheSetting() async throws {
    let directory = try TestDirectory()
    let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(listener) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) == 0 && listen(listener, 1) == 0 && getsockname(listener, $0, &length) == 0 }
    }
    try #require(bound)
    let port = Int(UInt16(bigEndian: address.sin_port))
    let result = try await ChildProcess.run(binary, [
      "--metrics-address", "127.0.0.1:\(port)", "--device-plugin-dir", directory.sub("dp"), "--run-dir", directory.sub("run"),
      "--state-dir", directory.sub("state"), "--pod-resources-socket", directory.sub("pr.sock"),
    ])
    #expect(result.status == 1)
    #expect(result.error.contains("metrics.address 127.0.0.1:\(port): cannot listen: Address already in use"), "\(result.error)")
  }
}

/// The executable runs its tasks and their sleeps on its one event loop (LoopExecutor.swift),
/// and reads signals on its main thread: libdispatch, Swift's default pool, starts no thread.
@Suite("vaccel-device-plugin threads")
struct DaemonThreadTests {
  @Test(.timeLimit(.minutes(2)))
  func registrationAnAdmissionACallAndAReloadStartNoDispatchThread() async throws {
    let directory = try TestDirectory()
    let kubelet = FakeKubelet(directory: directory.sub("dp"))
    let podResources = FakePodResourcesServer(socketPath: directory.sub("pr.sock"))
    let config = directory.sub("config.yaml")
    try """
      version: v1
      kubelet: {devicePluginDir: \(directory.sub("dp")), podResourcesSocket: \(directory.sub("pr.sock")), podResourcesInterval: 1s}
      runDir: \(directory.sub("run"))
      stateDir: \(directory.sub("state"))
      metrics: {address: "127.0.0.1:0"}
      agent: {binary: \(Fixtures.standinAgent)}
      resources: [{name: vaccel.org/accel, slots: 2}]
      """.write(toFile: config, atomically: true, encoding: .utf8)
    try await kubelet.start()
    try await podResources.start()
    defer { Task { await kubelet.stop(); await podResources.stop() } }

    let daemon = try ChildProcess(Fixtures.daemon, ["--config", config], mergeStandardError: true)
    let pid = daemon.process.processIdentifier
    _ = try await kubelet.wait(for: "registration") { $0.healthy("vaccel.org/accel") == 2 }
    // An admission: an agent spawned, watched (pidfd) and probed, with the probe's deadlines
    // and retry sleeps; a call through it; the checkpoint written on its own thread.
    let socket = try await kubelet.admit("vaccel.org/accel", [["accel-0"]]).hostSocket
    _ = try await AgentProbe.sessionRoundTrip(.unix(path: socket), timeout: .seconds(5))
    _ = try await waitForCheckpoint(stateDir: directory.sub("state")) { $0.first?.pid != nil }
    // A SIGHUP, read on the main thread and reloaded on the loop.
    kill(pid, SIGHUP)
    var lines = daemon.lines.makeAsyncIterator()
    var reloaded = false
    while let line = await lines.next() {
      if line.contains("msg=\"configuration reloaded\"") { reloaded = true; break }
    }
    #expect(reloaded)

    let tasks = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")
    let names = tasks.compactMap { try? String(contentsOfFile: "/proc/\(pid)/task/\($0)/comm", encoding: .utf8) }
      .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
    // libdispatch names its threads after its root queues ("com.apple.root.default-qos",
    // "...-qos.overcommit"); the kernel keeps their last 15 characters.
    #expect(!names.contains { $0.contains("qos") }, "\(names)")
    // The main thread, the loop, the process monitor, two inotify watchers, the checkpoint's.
    #expect(names.count <= 6, "\(names)")
    kill(pid, SIGTERM)
    #expect(await daemon.wait() == 0)
  }
}
