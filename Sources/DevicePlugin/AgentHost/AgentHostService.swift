import AgentHostAPI
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import GRPCCore
import Logging
import Synchronization
import VaccelAgents
import VaccelConfig

/// The agent host's API: starts, lists, signals and waits for the node's agent processes on
/// the device plugin's behalf. It decides nothing: what to run, when to restart and whether an
/// agent is ready stay with the plugin, so this part rarely needs a new release.
final class AgentHostService: AgentHostV1.SimpleServiceProtocol {
  struct Entry {
    let process: MonitoredProcess
    let message: Vaccel_Agenthost_V1_Process
  }

  /// Random per start: a pid means something only with the instance that ran it.
  let instance: String
  private let launcher: PosixLauncher
  private let logger: Logger
  private let state = Mutex<(running: [pid_t: Entry], ended: [pid_t: ExitStatus], endedOrder: [pid_t], stopping: Bool)>(
    ([:], [:], [], false))
  /// Exits kept for a `Wait` that comes late (the plugin was restarting when the agent ended).
  static let keptExits = 4096

  init(launcher: PosixLauncher, logger: Logger) {
    let random = String(UInt64.random(in: .min ... .max), radix: 16)
    self.instance = String(repeating: "0", count: 16 - random.count) + random
    self.launcher = launcher
    self.logger = logger
  }

  var runningCount: Int { state.withLock { $0.running.count } }

  func launch(request: Vaccel_Agenthost_V1_LaunchRequest, context: ServerContext) async throws -> Vaccel_Agenthost_V1_Process {
    guard request.executable.hasPrefix("/") else {
      throw RPCError(code: .invalidArgument, message: "executable must be an absolute path, not '\(request.executable)'")
    }
    if let folder = request.prepareFolders.first(where: { !$0.hasPrefix("/") }) {
      throw RPCError(code: .invalidArgument, message: "prepare_folders must be absolute paths, not '\(folder)'")
    }
    let spec = LaunchSpec(
      executable: request.executable, arguments: request.arguments, environment: request.environment,
      logPath: request.logPath.isEmpty ? nil : request.logPath, prepareFolders: request.prepareFolders)
    guard !state.withLock({ $0.stopping }) else {
      throw RPCError(code: .unavailable, message: "the agent host is stopping")
    }
    let process: any AgentProcess
    do {
      process = try await launcher.launchAgent(spec)
    } catch {
      throw RPCError(code: .failedPrecondition, message: "\(error)")
    }
    guard let process = process as? MonitoredProcess else { throw RPCError(code: .internalError, message: "not a child") }
    var message = Vaccel_Agenthost_V1_Process()
    message.hostInstance = instance
    message.pid = process.pid
    message.arguments = request.arguments
    message.environment = request.environment
    message.startedUnixMs = Int64(Date().timeIntervalSince1970 * 1000)
    let kept = state.withLock { state -> Bool in
      guard !state.stopping else { return false }
      state.running[process.pid] = Entry(process: process, message: message)
      return true
    }
    guard kept else {
      // `stopAll` began while this one started, and did not see it: nothing may outlive the host.
      await process.terminate(grace: .seconds(2))
      throw RPCError(code: .unavailable, message: "the agent host is stopping")
    }
    logger.info("agent started", metadata: ["pid": "\(process.pid)", "executable": "\(request.executable)"])
    Task {
      let status = await process.waitForExit()
      self.ended(process.pid, status)
    }
    return message
  }

  private func ended(_ pid: pid_t, _ status: ExitStatus) {
    state.withLock { state in
      state.running.removeValue(forKey: pid)
      state.ended[pid] = status
      state.endedOrder.append(pid)
      if state.endedOrder.count > Self.keptExits {
        let old = state.endedOrder.removeFirst()
        // A pid the kernel reused may have a newer exit further on: that one stays.
        if !state.endedOrder.contains(old) { state.ended.removeValue(forKey: old) }
      }
    }
    logger.info("agent ended", metadata: ["pid": "\(pid)", "status": "\(status)"])
  }

  func list(request: Vaccel_Agenthost_V1_ListRequest, context: ServerContext) async throws -> Vaccel_Agenthost_V1_ListResponse {
    var response = Vaccel_Agenthost_V1_ListResponse()
    response.hostInstance = instance
    response.version = BuildInfo.version
    response.hostPid = Int64(getpid())
    response.processes = state.withLock { state in
      state.running.values.filter { $0.process.exitStatus == nil }.map(\.message).sorted { $0.pid < $1.pid }
    }
    return response
  }

  private func entry(_ instance: String, _ pid: pid_t) throws -> Entry? {
    guard instance == self.instance else {
      throw RPCError(code: .notFound, message: "pid \(pid) belongs to agent host \(instance); this is \(self.instance)")
    }
    return state.withLock { $0.running[pid] }
  }

  func signal(request: Vaccel_Agenthost_V1_SignalRequest, context: ServerContext) async throws -> Vaccel_Agenthost_V1_SignalResponse {
    guard (1...64).contains(request.signal) else {
      throw RPCError(code: .invalidArgument, message: "\(request.signal) is not a signal number (1-64)")
    }
    var response = Vaccel_Agenthost_V1_SignalResponse()
    response.delivered = try entry(request.hostInstance, request.pid)?.process.signal(request.signal) ?? false
    return response
  }

  func wait(request: Vaccel_Agenthost_V1_WaitRequest, context: ServerContext) async throws -> Vaccel_Agenthost_V1_ExitStatus {
    guard let entry = try entry(request.hostInstance, request.pid) else {
      guard let status = state.withLock({ $0.ended[request.pid] }) else {
        throw RPCError(code: .notFound, message: "agent host \(instance) runs no pid \(request.pid)")
      }
      return status.message
    }
    // Handlers are not cancelled as tasks: a caller that hangs up arrives here.
    let waiter = Task { await entry.process.exitUnlessCancelled() }
    let status = await withRPCCancellationHandler {
      await waiter.value
    } onCancelRPC: {
      waiter.cancel()
    }
    guard let status else { throw RPCError(code: .cancelled, message: "the caller went away") }
    return status.message
  }

  /// The host stops (the product is uninstalled, or the host itself replaced): every agent
  /// stops with it, as the pods' agents would with their node.
  func stopAll(grace: Duration) async {
    // From here on no launch adds a process: one under way stops its own (see `launch`).
    let processes = state.withLock { state in
      state.stopping = true
      return state.running.values.map(\.process)
    }
    await withDiscardingTaskGroup { group in
      for process in processes { group.addTask { await process.terminate(grace: grace) } }
    }
  }
}
