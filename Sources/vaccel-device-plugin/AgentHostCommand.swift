import ArgumentParser
import DaemonLogging
import DevicePlugin
import Glibc
import Logging
import VaccelConfig

/// `vaccel-device-plugin agent-host`: the process that owns the node's agents, in a pod of its
/// own (the vaccel-agent-host DaemonSet, updated OnDelete), so that a rollout of the device
/// plugin leaves them running. The plugin finds it through `agentHost.socket` in its config.
struct AgentHostCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "vaccel-device-plugin agent-host",
    abstract: "Owns the node's vAccel agents so that they outlive rollouts of the device plugin.",
    discussion: """
      Serves the agent-host API on --socket (mode 0600) for the device plugin, which decides \
      what runs; SIGTERM/SIGINT stop every agent (SIGTERM, --stop-grace, SIGKILL) and exit 0. \
      Exit codes: 1 when another agent host serves the socket or it cannot be served, 2 on bad usage.
      """)

  @Option(help: "Unix socket of the agent-host API (the plugin's agentHost.socket).")
  var socket = "/var/run/vaccel/agent-host/agent-host.sock"

  @Option(help: "Seconds an agent gets between SIGTERM and SIGKILL when the host stops.")
  var stopGrace = 10

  @Option(help: "trace, debug, info, notice, warning, error or critical.")
  var logLevel = "info"

  @Option(help: "keyvalue (default) or json.")
  var logFormat = "keyvalue"

  /// Trapped in `main` before anything else; not a flag.
  var signals: ShutdownSignals?

  enum CodingKeys: String, CodingKey {
    case socket, stopGrace, logLevel, logFormat
  }

  /// Exit 2 on bad usage, as the daemon's own flags.
  static func main(_ arguments: [String], signals: ShutdownSignals) async {
    do {
      var command = try parseAsRoot(arguments)
      if var host = command as? AgentHostCommand {
        host.signals = signals
        try await host.run()
      } else {
        try command.run()
      }
    } catch {
      exitForUsage(error)
    }
  }

  func validate() throws {
    guard socket.hasPrefix("/"), socket.utf8.count <= 103 else {
      throw ValidationError("--socket '\(socket)' is not an absolute path of at most 103 bytes")
    }
    guard (0...300).contains(stopGrace) else { throw ValidationError("--stop-grace \(stopGrace) is not 0 to 300 seconds") }
    guard Logger.Level.allCases.map(\.rawValue).contains(logLevel.lowercased()) else {
      throw ValidationError("--log-level '\(logLevel)' is not one of trace, debug, info, notice, warning, error, critical")
    }
    guard LogFormat(rawValue: logFormat.lowercased()) != nil else {
      throw ValidationError("--log-format '\(logFormat)' is not one of keyvalue, json")
    }
  }

  func run() async throws {
    let control = LogLevelControl(Logger.Level(rawValue: logLevel.lowercased()) ?? .info)
    let format = LogFormat(rawValue: logFormat.lowercased()) ?? .keyvalue
    LoggingSystem.bootstrap { label in
      DaemonLogHandler(label: label, format: format, control: control)
    }
    let logger = Logger(label: "vaccel-agent-host")
    guard let signals else { throw ExitCode(1) }
    do {
      try await AgentHostDaemon(socket: socket, grace: .seconds(stopGrace), logger: logger).run(stopRequests: signals.requests)
    } catch {
      logger.critical("agent host failed", metadata: ["error": "\(error)"])
      throw ExitCode(1)
    }
  }
}

extension ParsableCommand {
  /// ArgumentParser exits 64 on a usage error; operators get one code for "your input is
  /// wrong", whether it came by flag or by file: 2.
  static func exitForUsage(_ error: any Error) -> Never {
    if exitCode(for: error) == .validationFailure {
      DaemonLogHandler.standardError(fullMessage(for: error))
      Glibc.exit(2)
    }
    exit(withError: error)
  }
}
