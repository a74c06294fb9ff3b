import ArgumentParser
import CVaccelSystem
import DaemonLogging
import DevicePlugin
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import VaccelConfig

/// The process's entry: trap the stop signals, then run the daemon (or the agent host) on the
/// cooperative pool while the main thread waits for the end, which `exit` brings.
///
/// Not Swift's async `main`: on Linux that parks the main thread with `dispatch_main()`, whose
/// `pthread_exit` unwinds the main thread's stack through the unwind tables, and about 1 MiB of
/// them then stays mapped for the daemon's whole life (BENCHMARKS.md, issue 14).
@main
enum Entry {
  static func main() {
    // Before any thread allocates: glibc gives every thread that allocates an arena of its own
    // (up to eight per core), and each keeps its freed pages. Ten threads that mostly wait
    // held about 1 MiB of heap in ten arenas; two arenas hold the same objects in 0.2 MiB less.
    // Each thread's cache of small chunks still spares most allocations the arena's lock.
    _ = vdp_limit_malloc_arenas(2)
    // First of all: from here on SIGTERM/SIGINT are requests to stop cleanly, whenever they come.
    let signals: ShutdownSignals
    do {
      signals = try ShutdownSignals.trap()
    } catch {
      DaemonLogHandler.standardError("vaccel-device-plugin: \(error)")
      Glibc.exit(1)
    }
    // One event loop for all of the daemon's sockets, set before anything starts NIO's shared
    // group: that group has one loop per core, each a thread with its own stack and a buffer
    // for 4096 tasks, so the daemon's idle memory would grow with the node's core count. The
    // loop only moves bytes; the daemon's work runs on the cooperative pool.
    NIOSingletons.groupLoopCountSuggestion = 1
    // Detached: `main` is on the main actor, whose queue this thread never serves.
    Task.detached {
      await VaccelDevicePlugin.main(signals: signals)
      Glibc.exit(0)
    }
    // The signal handlers write to a pipe and may run on this thread; each one ends a pause.
    while true { pause() }
  }
}

/// Thin command: parse flags, load the config (exit 2 on a bad one), log, run the daemon.
struct VaccelDevicePlugin: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "vaccel-device-plugin",
    abstract: "Advertises vAccel capacity to the kubelet as an extended resource (vaccel.org/accel).",
    discussion: """
      Configuration is read from defaults < --config FILE (or \(ConfigLoader.Environment.config)) \
      < VACCEL_DP_* environment variables < flags. Exit codes: 0 after SIGTERM/SIGINT, \
      1 on a runtime failure, 2 on a bad configuration or usage. \
      `vaccel-device-plugin agent-host --help`: the agent host, which owns the agents so that \
      they outlive rollouts of this daemon.
      """,
    version: BuildInfo.version)

  /// ArgumentParser exits 64 on a usage error; operators get one code for "your input is
  /// wrong", whether it came by flag or by file: 2.
  static func main(signals: ShutdownSignals) async {
    // The agent host is a command of its own, not a subcommand: ArgumentParser would give
    // `agent-host --log-level x` to this command's option of the same name.
    let arguments = Array(CommandLine.arguments.dropFirst())
    if arguments.first == "agent-host" {
      await AgentHostCommand.main(Array(arguments.dropFirst()), signals: signals)
      return
    }
    do {
      var command = try parseAsRoot()
      if var command = command as? VaccelDevicePlugin {
        command.signals = signals
        try await command.run()
      } else {
        try command.run()
      }
    } catch {
      exitForUsage(error)
    }
  }

  @Option(help: "YAML config file (version: v1).")
  var config: String?

  @Option(help: "The kubelet's device-plugins folder.")
  var devicePluginDir: String?

  @Option(help: "The kubelet's pod-resources socket.")
  var podResourcesSocket: String?

  @Option(help: "Folder for per-slot endpoint folders.")
  var runDir: String?

  @Option(help: "Folder for the daemon's checkpoint and agent logs.")
  var stateDir: String?

  @Option(help: "trace, debug, info, notice, warning, error or critical.")
  var logLevel: String?

  @Option(help: "keyvalue (default) or json.")
  var logFormat: String?

  @Option(help: "host:port for /metrics, /healthz and /readyz; empty turns the listener off.")
  var metricsAddress: String?

  @Option(help: "Unix socket of the status API that vaccelctl reads; empty turns it off.")
  var statusSocket: String?

  /// Trapped in `main` before anything else; not a flag.
  var signals: ShutdownSignals?

  enum CodingKeys: String, CodingKey {
    case config, devicePluginDir, podResourcesSocket, runDir, stateDir, logLevel, logFormat, metricsAddress, statusSocket
  }

  func run() async throws {
    let overrides = ConfigOverrides(
      configPath: config, devicePluginDir: devicePluginDir, podResourcesSocket: podResourcesSocket,
      runDir: runDir, stateDir: stateDir, logLevel: logLevel, logFormat: logFormat, metricsAddress: metricsAddress,
      statusSocket: statusSocket)
    let daemonConfig: DaemonConfig
    do {
      daemonConfig = try ConfigLoader.load(flags: overrides, environment: ProcessInfo.processInfo.environment)
    } catch {
      DaemonLogHandler.standardError("vaccel-device-plugin: invalid configuration: \(error)")
      throw ExitCode(2)
    }

    let control = LogLevelControl(daemonConfig.logLevel)
    let format = daemonConfig.logFormat
    LoggingSystem.bootstrap { label in
      DaemonLogHandler(label: label, format: format, control: control)
    }
    let logger = Logger(label: "vaccel-device-plugin")
    do {
      let environment = ProcessInfo.processInfo.environment
      let reloader = LogLevelReloader(control: control, logger: logger) {
        try ConfigLoader.load(flags: overrides, environment: environment).logLevel
      }
      try await NodeDaemon(config: daemonConfig, logger: logger, reapOrphans: true)
        .run(gracefulShutdownSignals: [], stopRequests: signals?.requests, additionalServices: [reloader])
    } catch {
      logger.critical("daemon failed", metadata: ["error": "\(error)"])
      throw ExitCode(1)
    }
  }
}
