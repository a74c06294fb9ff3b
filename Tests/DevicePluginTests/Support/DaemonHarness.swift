import DaemonLogging
import DevicePlugin
import NodeSupport
import Foundation
import Logging
import VaccelAgents
import VaccelConfig

/// The real daemon, in-process, against a `FakeKubelet` in a fresh temp folder.
struct DaemonHarness {
  let directory: TestDirectory
  let config: DaemonConfig
  let kubelet: FakeKubelet
  let daemon: NodeDaemon
  private let task: Task<Void, any Error>

  var resource: String { config.resources[0].name }
  var socketPath: String { config.kubelet.devicePluginDir + "/" + config.resources[0].endpointFileName }
  var manager: DeviceManager { daemon.plugins[0].manager }
  var agents: AgentPool { daemon.managers[0].agents! }

  /// Agents are the stand-in, with short timings so failures show quickly.
  static var agent: AgentConfig {
    AgentConfig(
      binary: Fixtures.standinAgent, probeTimeout: .seconds(2), readyTimeout: .seconds(10),
      stopGracePeriod: .seconds(2), restartBackoffInitial: .milliseconds(50),
      restartBackoffMax: .milliseconds(400), nodeCheckInterval: .seconds(1))
  }

  static func config(in directory: TestDirectory, resources: [ResourceConfig] = [ResourceConfig()]) -> DaemonConfig {
    let agent = Self.agent
    return DaemonConfig(
      kubelet: KubeletConfig(
        devicePluginDir: directory.sub("dp"),
        podResourcesSocket: directory.sub("pod-resources.sock"),
        // Long, so that tests prove inotify drives re-registration and drive pod-resources
        // polls themselves; tests of the periodic paths set their own.
        recheckInterval: .seconds(3600),
        podResourcesInterval: .seconds(3600),
        allocationGrace: .zero),
      runDir: directory.sub("run"),
      stateDir: directory.sub("state"),
      metricsAddress: "",  // tests that want it pick a free port
      agent: agent,
      resources: resources.map { resource in
        var resource = resource
        resource.agent = agent
        return resource
      })
  }

  /// Starts the kubelet first unless `kubeletFirst` is false.
  static func start(
    directory: TestDirectory? = nil,
    configure: (inout DaemonConfig) -> Void = { _ in },
    authority: FakeKubelet.Authority = .localhost,
    watcher: any DirectoryWatching = InotifyWatcher(),
    podResources: FakePodResources = FakePodResources(),
    kubeletFirst: Bool = true,
    vaccelRunFolder: String?? = nil,
    logger: Logger = .test
  ) async throws -> DaemonHarness {
    let directory = try directory ?? TestDirectory()
    var config = Self.config(in: directory)
    configure(&config)
    let kubelet = FakeKubelet(directory: config.kubelet.devicePluginDir, authority: authority)
    if kubeletFirst { try await kubelet.start() }
    // libvaccel's run folder: the test's own, never the machine's /run/user.
    let daemon = try NodeDaemon(
      config: config, logger: logger, watcher: watcher, podResources: podResources,
      vaccelRunFolder: vaccelRunFolder ?? directory.sub("vaccel-run"))
    let task = Task { try await daemon.run(gracefulShutdownSignals: []) }
    return DaemonHarness(directory: directory, config: config, kubelet: kubelet, daemon: daemon, task: task)
  }

  /// Waits for `registrations` registrations with every device listed healthy.
  @discardableResult
  func registered(_ registrations: Int = 1) async throws -> FakeKubelet.State {
    let resource = resource
    let slots = config.resources[0].slots
    return try await kubelet.wait(for: "registration \(registrations) with \(slots) healthy devices") {
      $0.registrations >= registrations && $0.healthy(resource) == slots
        && $0.plugins[resource]?.streamOpen == true
    }
  }

  /// Stops the daemon as SIGTERM would and waits for it to finish.
  func stop() async throws {
    task.cancel()
    try await task.value
  }

  func shutdown() async {
    task.cancel()
    _ = await task.result
    await kubelet.stop()
  }
}

/// A watcher that never reports anything: only the periodic re-check can notice changes.
struct SilentWatcher: DirectoryWatching {
  func changes(in directory: String) throws -> AsyncStream<Void> {
    AsyncStream { _ in }
  }
}

/// Where the stand-in agent was built: beside the test bundle.
enum Fixtures {
  static let standinAgent: String = {
    let folder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
    for candidate in [folder + "/vaccel-standin-agent", Repository.root + "/.build/debug/vaccel-standin-agent"]
    where FileManager.default.isExecutableFile(atPath: candidate) {
      return candidate
    }
    return Repository.root + "/.build/debug/vaccel-standin-agent"
  }()

  /// The daemon binary, built beside the stand-in.
  static var daemon: String {
    URL(fileURLWithPath: standinAgent).deletingLastPathComponent().path + "/vaccel-device-plugin"
  }
}

/// pod-resources for in-process tests: what the test says is held, or an error.
final class FakePodResources: PodResourcesListing, @unchecked Sendable {
  private let lock = NSLock()
  private var held: [String: [String: Holder]] = [:]
  private var failure: (any Error)?

  func set(_ resource: String, _ devices: [String: Holder]) {
    lock.withLock { held[resource] = devices }
  }

  func fail(with error: (any Error)?) {
    lock.withLock { failure = error }
  }

  func list() async throws -> [String: [String: Holder]] {
    try lock.withLock {
      if let failure { throw failure }
      return held
    }
  }
}

extension DaemonHarness {
  /// Runs `body` with a started harness and always shuts it down (agents stopped) before
  /// returning, whether the body passed or threw.
  static func using<T>(_ harness: DaemonHarness, _ body: (DaemonHarness) async throws -> T) async throws -> T {
    do {
      let result = try await body(harness)
      await harness.shutdown()
      return result
    } catch {
      await harness.shutdown()
      throw error
    }
  }
}

/// Runs `body` while `daemon` runs, and waits for the daemon (and its agents) to stop after.
func withRunningDaemon<T>(_ daemon: NodeDaemon, _ body: () async throws -> T) async throws -> T {
  let task = Task { try await daemon.run(gracefulShutdownSignals: []) }
  do {
    let result = try await body()
    task.cancel()
    _ = await task.result
    return result
  } catch {
    // Say whether the daemon had already stopped, and why: a body that times out waiting for
    // the daemon is otherwise silent about the daemon's own failure.
    let ended = await withTaskGroup(of: String?.self) { group in
      group.addTask { if case .failure(let failure) = await task.result { return "\(failure)" } else { return "stopped cleanly" } }
      group.addTask { try? await Task.sleep(for: .milliseconds(10)); return nil }
      defer { group.cancelAll() }
      return await group.next() ?? nil
    }
    task.cancel()
    _ = await task.result
    throw DaemonRunFailure(body: error, daemon: ended ?? "still running")
  }
}

/// A daemon logger whose key=value lines arrive on a stream, for tests that wait on what the
/// daemon says it did.
func capturedLogger(level: Logger.Level = .info) -> (Logger, AsyncStream<String>) {
  let (lines, sink) = AsyncStream.makeStream(of: String.self)
  let logger = Logger(label: "daemon") { label in
    DaemonLogHandler(label: label, format: .keyvalue, control: LogLevelControl(level)) { sink.yield($0) }
  }
  return (logger, lines)
}

/// The first line containing `text`, or `TimedOut` after `timeout`.
func firstLine(in lines: AsyncStream<String>, containing text: String, timeout: Duration = .seconds(20)) async throws -> String {
  try await withThrowingTaskGroup(of: String.self) { group in
    group.addTask {
      for await line in lines where line.contains(text) { return line }
      throw TimedOut(what: "a log line with '\(text)'")
    }
    group.addTask {
      try await Task.sleep(for: timeout)
      throw TimedOut(what: "a log line with '\(text)' within \(timeout)")
    }
    defer { group.cancelAll() }
    return try await group.next()!
  }
}

struct DaemonRunFailure: Error, CustomStringConvertible {
  var body: any Error
  var daemon: String
  var description: String { "\(body) (the daemon: \(daemon))" }
}

/// Waits (on inotify events of the state folder) for a checkpoint whose `vaccel.org/accel`
/// slots satisfy `predicate`.
func waitForCheckpoint(
  stateDir: String, where predicate: @escaping @Sendable ([Checkpoint.Slot]) -> Bool
) async throws -> [Checkpoint.Slot] {
  let store = CheckpointStore(stateDir: stateDir)
  let read: @Sendable () -> [Checkpoint.Slot]? = {
    guard let slots = (try? store.load())??.resources["vaccel.org/accel"], predicate(slots) else { return nil }
    return slots
  }
  try FileManager.default.createDirectory(atPath: stateDir, withIntermediateDirectories: true)
  let changes = try InotifyWatcher().changes(in: stateDir)
  if let slots = read() { return slots }
  return try await withThrowingTaskGroup(of: [Checkpoint.Slot].self) { group in
    group.addTask {
      for await _ in changes { if let slots = read() { return slots } }
      throw TimedOut(what: "checkpoint")
    }
    group.addTask {
      try await Task.sleep(for: .seconds(20))
      throw TimedOut(what: "the checkpoint to show what was expected")
    }
    defer { group.cancelAll() }
    return try await group.next()!
  }
}
