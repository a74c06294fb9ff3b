#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import Logging
import NodeSupport
public import VaccelConfig
import VaccelRPC

/// One trial run of an agent, exactly as the daemon runs one: the configured arguments and
/// environment, a unix socket in a temporary folder, one session round trip (`CreateSession`,
/// `DestroySession`), then SIGTERM. The real agent has no `--version`: starting it is the only
/// proof that it runs, plugins and libraries included (`vaccelctl doctor`).
public enum AgentTrial {
  public struct Result: Sendable {
    /// From exec until the session round trip answered.
    public var ready: Duration
    public var address: String
  }

  public static func run(
    _ install: AgentInstall, agent: AgentConfig, timeout: Duration = .seconds(10)
  ) async throws(AgentError) -> Result {
    var template = Array("/tmp/vaccel-trial.XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else { throw .launch("cannot create a temporary folder: \(String(cString: strerror(errno)))") }
    let folder = String(cString: made)
    defer { Directories.removeTree(folder) }
    let monitor: ProcessMonitor
    do {
      monitor = try ProcessMonitor(reapOrphans: false, logger: Logger(label: "trial", factory: { _ in SwiftLogNoOpLogHandler() }))
    } catch {
      throw .launch("cannot watch processes: \(error)")
    }
    defer { monitor.shutdown() }

    let address = AgentAddress.unix(path: folder + "/" + EndpointLayout.socketName)
    let log = folder + "/agent.log"
    var environment = agent.environment
    environment["PATH"] = environment["PATH"] ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    let spec = LaunchSpec(
      executable: install.executable,
      arguments: agent.args.map { $0.replacingEvery(AgentConfig.addressPlaceholder, with: address.description) },
      environment: environment, logPath: log)
    let process: MonitoredProcess
    do {
      process = try PosixLauncher(monitor: monitor).launch(spec)
    } catch {
      throw .launch("cannot start \(install.executable): \(error)")
    }
    let started = ContinuousClock.now
    let probe = AgentProbe(mode: .session, timeout: agent.probeTimeout)
    var lastError = "no answer"
    var interval: Duration = .milliseconds(5)
    while ContinuousClock.now - started < timeout {
      if let exit = process.exitStatus {
        throw .exited("\(install.executable) \(exit) before it served a session\(lastLine(log).map { ": \($0)" } ?? "")")
      }
      do {
        try await probe.check(address)
        let ready = ContinuousClock.now - started
        await process.terminate(grace: agent.stopGracePeriod)
        return Result(ready: ready, address: address.description)
      } catch {
        lastError = "\(error)"
      }
      try? await Task.sleep(for: interval)
      interval = min(interval * 2, .milliseconds(100))
    }
    await process.terminate(grace: agent.stopGracePeriod)
    throw .notReady("\(install.executable) served no session within \(timeout): \(lastError)\(lastLine(log).map { "; it said: \($0)" } ?? "")")
  }

  /// The agent's last non-empty line of output, shortened.
  private static func lastLine(_ path: String) -> String? {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
    return text.split(separator: "\n").last(where: { $0.contains { $0 != " " && $0 != "\t" } }).map { String($0.prefix(300)) }
  }
}
