public import DaemonLogging
public import Logging
public import ServiceLifecycle
import UnixSignals

/// On SIGHUP, reads the configuration again (same file, environment and flags) and applies its
/// log level at once, everywhere. Other settings need a restart, and a config that no longer
/// loads keeps the current level, with the reason logged.
public struct LogLevelReloader: Service, CustomStringConvertible {
  let control: LogLevelControl
  let reload: @Sendable () throws -> Logger.Level
  let logger: Logger

  public init(control: LogLevelControl, logger: Logger, reload: @escaping @Sendable () throws -> Logger.Level) {
    self.control = control
    self.reload = reload
    self.logger = logger
  }

  public var description: String { "LogLevelReloader" }

  public func run() async {
    let signals = await UnixSignalsSequence(trapping: .sighup)
    for await _ in signals.cancelOnGracefulShutdown() {
      do {
        let level = try reload()
        control.current = level
        logger.notice("configuration reloaded", metadata: ["logLevel": "\(level)"])
      } catch {
        logger.error("configuration reload failed; the log level is unchanged", metadata: ["error": "\(error)"])
      }
    }
  }
}
