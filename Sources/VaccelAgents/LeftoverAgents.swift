import Glibc

/// Agents a previous daemon instance left behind that nobody needs: stopped the same way as
/// our own (SIGTERM, grace, SIGKILL), through a pidfd so a reused pid is never hit.
public enum LeftoverAgents {
  public static func stop(pid: Int32, monitor: ProcessMonitor, grace: Duration) async {
    guard let process = try? monitor.watch(pid: pid, isChild: false) else { return }
    await process.terminate(grace: grace)
  }
}
