public import DaemonLogging
public import Logging
public import ServiceLifecycle

/// On SIGHUP (each element of `requests`), reads the configuration again (same file,
/// environment and flags) and applies its log level at once, everywhere. Other settings need a
/// restart, and a config that no longer loads keeps the current level, with the reason logged.
public struct LogLevelReloader: Service, CustomStringConvertible {
  let control: LogLevelControl
  let requests: AsyncStream<Void>
  let reload: @Sendable () throws -> Logger.Level
  let logger: Logger

  public init(
    control: LogLevelControl, requests: AsyncStream<Void>, logger: Logger,
    reload: @escaping @Sendable () throws -> Logger.Level
  ) {
    self.control = control
    self.requests = requests
    self.reload = reload
    self.logger = logger
  }

  public var description: String { "LogLevelReloader" }

  public func run() async {
    for await _ in requests.cancelOnGracefulShutdown() {
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
