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

/// The process's entry: trap the stop signals, run the daemon (or the agent host) on the event
/// loop, and read the signals on the main thread until `exit` ends the process.
///
/// Not Swift's async `main`: on Linux that parks the main thread with `dispatch_main()`, whose
/// `pthread_exit` unwinds the main thread's stack through the unwind tables, and about 1 MiB of
/// them then stays mapped for the daemon's whole life (BENCHMARKS.md, issue 14).
@main
enum Entry {
  static func main() {
    // Before any thread allocates: glibc gives every thread that allocates an arena of its own
    // (up to eight per core), and each keeps its freed pages. Ten threads that mostly waited
    // held about 1 MiB of heap in ten arenas; two arenas held the same objects in 0.2 MiB less.
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
    // One event loop for all of the daemon's sockets and all of its tasks, set before anything
    // starts NIO's shared group: that group has one loop per core, each a thread with its own
    // stack and a buffer for 4096 tasks, so the daemon's idle memory would grow with the node's
    // core count.
    NIOSingletons.groupLoopCountSuggestion = 1
    LoopExecutorFactory.install()
    // Detached: `main` is on the main actor, whose queue this thread never serves.
    Task.detached {
      await VaccelDevicePlugin.main(signals: signals)
      Glibc.exit(0)
    }
    signals.readOnThisThread()
  }
}

/// Thin command: parse flags, load the config (exit 2 on a bad one), log, run the daemon.
struct VaccelDevicePlugin {
  static let flags = Flags(
    command: "vaccel-device-plugin",
    abstract: "Advertises vAccel capacity to the kubelet as an extended resource (vaccel.org/accel).",
    discussion: """
      Configuration is read from defaults < --config FILE (or \(ConfigLoader.Environment.config)) \
      < VACCEL_DP_* environment variables < flags. Exit codes: 0 after SIGTERM/SIGINT, \
      1 on a runtime failure, 2 on a bad configuration or usage. \
      `vaccel-device-plugin agent-host --help`: the agent host, which owns the agents so that \
      they outlive rollouts of this daemon.
      """,
    options: [
      .init(name: "config", help: "YAML config file (version: v1).", value: "file"),
      .init(name: "device-plugin-dir", help: "The kubelet's device-plugins folder.", value: "folder"),
      .init(name: "pod-resources-socket", help: "The kubelet's pod-resources socket.", value: "socket"),
      .init(name: "run-dir", help: "Folder for per-slot endpoint folders.", value: "folder"),
      .init(name: "state-dir", help: "Folder for the daemon's checkpoint and agent logs.", value: "folder"),
      .init(name: "log-level", help: "trace, debug, info, notice, warning, error or critical.", value: "level"),
      .init(name: "log-format", help: "keyvalue (default) or json.", value: "format"),
      .init(name: "metrics-address", help: "host:port for /metrics, /healthz and /readyz; empty turns the listener off.", value: "address"),
      .init(name: "status-socket", help: "Unix socket of the status API that vaccelctl reads; empty turns it off.", value: "socket"),
    ],
    version: BuildInfo.version)

  static func main(signals: ShutdownSignals) async {
    // The agent host is a command of its own, not a subcommand: its flags are its own, even
    // those that share a name with this command's.
    let arguments = Array(CommandLine.arguments.dropFirst())
    if arguments.first == "agent-host" {
      await AgentHostCommand.main(Array(arguments.dropFirst()), signals: signals)
      return
    }
    let values = flags.parseOrExit(arguments)
    let overrides = ConfigOverrides(
      configPath: values["config"], devicePluginDir: values["device-plugin-dir"],
      podResourcesSocket: values["pod-resources-socket"], runDir: values["run-dir"], stateDir: values["state-dir"],
      logLevel: values["log-level"], logFormat: values["log-format"], metricsAddress: values["metrics-address"],
      statusSocket: values["status-socket"])
    await VaccelDevicePlugin(overrides: overrides, signals: signals).run()
  }

  let overrides: ConfigOverrides
  /// Trapped in `main` before anything else; not a flag.
  let signals: ShutdownSignals

  /// Exits 2 on a bad configuration, 1 when the daemon fails; returns after a clean stop.
  func run() async {
    let daemonConfig: DaemonConfig
    do {
      daemonConfig = try ConfigLoader.load(flags: overrides, environment: ProcessInfo.processInfo.environment)
    } catch {
      DaemonLogHandler.standardError("vaccel-device-plugin: invalid configuration: \(error)")
      exit(2)
    }

    let control = LogLevelControl(daemonConfig.logLevel)
    let format = daemonConfig.logFormat
    LoggingSystem.bootstrap { label in
      DaemonLogHandler(label: label, format: format, control: control)
    }
    let logger = Logger(label: "vaccel-device-plugin")
    do {
      let environment = ProcessInfo.processInfo.environment
      let reloader = LogLevelReloader(control: control, requests: signals.reloads, logger: logger) {
        try ConfigLoader.load(flags: overrides, environment: environment).logLevel
      }
      try await NodeDaemon(config: daemonConfig, logger: logger, reapOrphans: true)
        .run(gracefulShutdownSignals: [], stopRequests: signals.requests, additionalServices: [reloader])
    } catch {
      logger.critical("daemon failed", metadata: ["error": "\(error)"])
      exit(1)
    }
  }
}
