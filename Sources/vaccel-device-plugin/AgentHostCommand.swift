import DaemonLogging
import DevicePlugin
import Glibc
import Logging
import VaccelConfig

/// `vaccel-device-plugin agent-host`: the process that owns the node's agents, in a pod of its
/// own (the vaccel-agent-host DaemonSet, updated OnDelete), so that a rollout of the device
/// plugin leaves them running. The plugin finds it through `agentHost.socket` in its config.
struct AgentHostCommand {
  static let flags = Flags(
    command: "vaccel-device-plugin agent-host",
    abstract: "Owns the node's vAccel agents so that they outlive rollouts of the device plugin.",
    discussion: """
      Serves the agent-host API on --socket (mode 0600) for the device plugin, which decides \
      what runs; SIGTERM/SIGINT stop every agent (SIGTERM, --stop-grace, SIGKILL) and exit 0. \
      Exit codes: 1 when another agent host serves the socket or it cannot be served, 2 on bad usage.
      """,
    options: [
      .init(name: "socket", help: "Unix socket of the agent-host API (the plugin's agentHost.socket). Default: \(defaultSocket).", value: "path"),
      .init(name: "stop-grace", help: "Seconds an agent gets between SIGTERM and SIGKILL when the host stops. Default: 10.", value: "seconds"),
      .init(name: "log-level", help: "trace, debug, info, notice, warning, error or critical. Default: info.", value: "level"),
      .init(name: "log-format", help: "keyvalue (default) or json.", value: "format"),
    ],
    version: nil)
  static let defaultSocket = "/var/run/vaccel/agent-host/agent-host.sock"

  let socket: String
  let stopGrace: Int
  let logLevel: Logger.Level
  let logFormat: LogFormat

  /// Exit 2 on bad usage, as the daemon's own flags.
  static func main(_ arguments: [String], signals: ShutdownSignals) async {
    let values = flags.parseOrExit(arguments)
    let socket = values["socket"] ?? defaultSocket
    guard socket.hasPrefix("/"), socket.utf8.count <= 103 else {
      flags.usageError("--socket '\(socket)' is not an absolute path of at most 103 bytes")
    }
    let graceText = values["stop-grace"] ?? "10"
    guard let stopGrace = Int(graceText), (0...300).contains(stopGrace) else {
      flags.usageError("--stop-grace \(graceText) is not 0 to 300 seconds")
    }
    let levelText = values["log-level"] ?? "info"
    guard let logLevel = Logger.Level(rawValue: levelText.lowercased()) else {
      flags.usageError("--log-level '\(levelText)' is not one of trace, debug, info, notice, warning, error, critical")
    }
    let formatText = values["log-format"] ?? "keyvalue"
    guard let logFormat = LogFormat(rawValue: formatText.lowercased()) else {
      flags.usageError("--log-format '\(formatText)' is not one of keyvalue, json")
    }
    await AgentHostCommand(socket: socket, stopGrace: stopGrace, logLevel: logLevel, logFormat: logFormat)
      .run(signals: signals)
  }

  /// Returns after a clean stop; exits 1 when the host fails.
  func run(signals: ShutdownSignals) async {
    let control = LogLevelControl(logLevel)
    let format = logFormat
    LoggingSystem.bootstrap { label in
      DaemonLogHandler(label: label, format: format, control: control)
    }
    let logger = Logger(label: "vaccel-agent-host")
    do {
      try await AgentHostDaemon(socket: socket, grace: .seconds(stopGrace), logger: logger).run(stopRequests: signals.requests)
    } catch {
      logger.critical("agent host failed", metadata: ["error": "\(error)"])
      exit(1)
    }
  }
}
