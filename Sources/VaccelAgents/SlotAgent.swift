#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
public import Logging
import NodeSupport
public import VaccelConfig
import VaccelRPC

/// Everything one slot's supervisor needs; built by `AgentPool`. What all of a resource's
/// slots have in common is kept once (`Shared`): at 1,024 slots a copy each cost 0.4 MiB.
public struct SlotAgentContext: Sendable {
  /// The resource-wide part, one instance for all of a resource's slots.
  public final class Shared: Sendable {
    public let agent: AgentConfig
    /// Owner and mode of the slot folder and agent socket (unix transport).
    public let access: EndpointAccess
    public let launcher: any ProcessLaunching
    public let logger: Logger
    /// libvaccel's run folder, made before every start (nil: left to libvaccel).
    public let vaccelRunFolder: String?
    public let onEvent: @Sendable (AgentEvent) -> Void

    public init(
      agent: AgentConfig, access: EndpointAccess, launcher: any ProcessLaunching, logger: Logger,
      vaccelRunFolder: String?, onEvent: @escaping @Sendable (AgentEvent) -> Void
    ) {
      self.agent = agent
      self.access = access
      self.launcher = launcher
      self.logger = logger
      self.vaccelRunFolder = vaccelRunFolder
      self.onEvent = onEvent
    }
  }

  /// Where the slot's agents listen, per allocation.
  public var addressing: SlotAddressing
  public var slotID: String { addressing.slotID }
  public var index: Int { addressing.index }
  public var logPath: String
  public let shared: Shared
  public var agent: AgentConfig { shared.agent }
  public var access: EndpointAccess { shared.access }
  public var launcher: any ProcessLaunching { shared.launcher }
  public var logger: Logger { shared.logger }
  public var vaccelRunFolder: String? { shared.vaccelRunFolder }
  public func onEvent(_ event: AgentEvent) { shared.onEvent(event) }

  public init(addressing: SlotAddressing, logPath: String, shared: Shared) {
    self.addressing = addressing
    self.logPath = logPath
    self.shared = shared
  }
}

/// Supervises the one agent behind one slot: starts it (removing a stale socket first, since
/// the real agent never removes its own), waits until the probe passes, restarts it with
/// back-off when it exits, and recycles it (stop, wipe the folder, fresh process) before it
/// serves another holder.
public actor SlotAgent {
  public nonisolated let context: SlotAgentContext
  private var status = SlotAgentStatus()
  private var install: AgentInstall?
  private var process: (any AgentProcess)?
  /// The files the running agent started from, to explain a crash after they changed.
  private var startedFrom: InstallFingerprint?
  /// Where the current allocation's agent listens. unix: nil until an agent is started or
  /// handed out; a new one after every recycle, so no holder ever sees the next one's agent.
  private var endpoint: AgentEndpoint?
  private var supervisor: Task<Void, Never>?
  private var readyWaiters: [UUID: CheckedContinuation<Void, any Error>] = [:]
  /// Serializes hand-out, recycle and stop, which all suspend (stopping an agent takes time):
  /// an actor runs one piece at a time, but its methods interleave at every `await`.
  private var lifecycleHeld = false
  private var lifecycleWaiters: [CheckedContinuation<Void, Never>] = []
  /// The agent's last lines, and whether each was forwarded, for the tail after a crash.
  private var recentLines: [(line: String, forwarded: Bool)] = []
  /// Immediate restarts in a row after libvaccel lost its run-folder race.
  private var runFolderRetries = 0
  /// Set when the daemon stops: nothing starts here any more, whoever asks afterwards.
  private var closed = false
  /// The back-off wait in progress; cancelling it restarts the agent at once.
  private var backoffTimer: Task<Void, any Error>?
  private let log: AgentLog
  private let changes: AsyncStream<Int>.Continuation
  /// Made when used, from the resource's settings: kept, it cost about 40 bytes a slot.
  private var probe: AgentProbe { AgentProbe(mode: context.agent.probe, timeout: context.agent.probeTimeout) }
  /// The resource's logger with this slot's id: made when something is said, not kept (a
  /// logger of its own per slot cost 0.23 KiB each, at 1,024 slots 0.23 MiB).
  private var logger: Logger {
    var logger = context.logger
    logger[metadataKey: "slot"] = "\(context.slotID)"
    return logger
  }

  /// Probe intervals while an agent starts, once its socket exists: the only fast loop,
  /// bounded by `readyTimeout`. It starts at 1 ms (a real agent is ready within milliseconds,
  /// and every millisecond lost here is PreStartContainer latency) and grows by half each try
  /// up to 20 ms.
  static let firstStartPoll: Duration = .milliseconds(1)
  static let maxStartPoll: Duration = .milliseconds(20)
  /// The longest path a unix socket can be bound at (sun_path less its NUL).
  static let maxSocketPath = 107
  /// How often a starting unix agent's socket is looked for (an lstat), before probing.
  static let socketPoll: Duration = .microseconds(250)

  static func socketExists(_ path: String) -> Bool {
    var info = stat()
    return lstat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFSOCK
  }

  /// `changes` gets this slot's index whenever its status changes (`snapshot` has it).
  public init(context: SlotAgentContext, changes: AsyncStream<Int>.Continuation) {
    self.context = context
    self.changes = changes
    self.log = AgentLog(path: context.logPath, maxBytes: context.agent.logMaxBytes)
    if !context.addressing.perAllocation {
      self.endpoint = context.addressing.endpoint(allocation: "")
      self.status.endpoint = endpoint?.listen.description
    }
  }

  public var snapshot: SlotAgentStatus { status }

  /// The current allocation's place, made up now if there is none yet; nil while a slot that
  /// follows its holder's VM sandbox has none bound (only `bind` gives it one).
  private func assignEndpoint() -> AgentEndpoint? {
    if let endpoint { return endpoint }
    guard !context.addressing.followsSandbox else { return nil }
    let assigned = context.addressing.endpoint(allocation: EndpointLayout.newAllocation())
    endpoint = assigned
    status.endpoint = assigned.listen.description
    return assigned
  }

  private func publish() {
    changes.yield(context.index)
  }

  // MARK: Node checks

  /// The node's install, or nil with the reason: no agent starts while it is nil.
  public func setInstall(_ result: Result<AgentInstall, AgentError>) {
    switch result {
    case .success(let install):
      let recovered = self.install == nil
      self.install = install
      if status.phase == .unavailable {
        status.phase = .stopped
        status.lastError = nil
      }
      if recovered && status.wanted { ensureSupervisor() }
    case .failure(let error):
      install = nil
      if process == nil {
        status.phase = .unavailable
        status.lastError = error.description
      }
      failWaiters(.nodeCheck(error.description))
    }
    publish()
  }

  // MARK: What the pool asks for

  /// Makes sure an agent runs here and waits until it is ready (PreStartContainer, warm pool).
  public func ensureReady(within deadline: Duration) async throws(AgentError) {
    await acquireLifecycle()
    // Only a holder asks for this: whatever runs here is theirs now, recycled before another.
    status.handedOut = true
    let started = startLocked()
    releaseLifecycle()
    try started.get()
    guard status.phase != .ready else { return }
    try await waitUntilReady(within: deadline)
  }

  private func startLocked() -> Result<Void, AgentError> {
    guard !closed else { return .failure(.notReady("the daemon is stopping")) }
    if context.addressing.followsSandbox && endpoint == nil {
      return .failure(.notReady("the holder's VM sandbox is not known yet"))
    }
    status.wanted = true
    guard install != nil else {
      publish()
      return .failure(.nodeCheck(status.lastError ?? "the node cannot run agents"))
    }
    ensureSupervisor()
    publish()
    // A container is about to start: do not make it wait out a restart back-off.
    if status.phase != .ready { backoffTimer?.cancel() }
    return .success(())
  }

  /// Starts an agent without waiting for it (the warm pool).
  public func keepWarm() async {
    await acquireLifecycle()
    defer { releaseLifecycle() }
    guard !status.wanted, install != nil else { return }
    status.wanted = true
    ensureSupervisor()
    publish()
  }

  /// Hands the slot's agent to a new holder: a fresh process that never served anyone, in a
  /// place of the allocation's own (unix), which is returned at once. A warm agent is handed
  /// over as it is; otherwise one is starting when this returns, and `ensureReady` (the
  /// kubelet's PreStartContainer, before the container starts) waits for it.
  /// Lifecycle changes (hand-out, recycle, stop) run one at a time: a hand-out that arrives
  /// while the previous holder's recycle is stopping the agent waits for it, then starts anew.
  /// A slot that follows its holder's VM sandbox starts nothing here (the VM does not run yet):
  /// it is only marked as the new holder's, and nil is returned; `bind` places its agent.
  public func handOut() async throws(AgentError) -> AgentEndpoint? {
    await acquireLifecycle()
    if status.handedOut {
      await recycleLocked(keepRunning: true)
    }
    guard let place = assignEndpoint() else {
      status.handedOut = true
      status.generation += 1
      publish()
      releaseLifecycle()
      return nil
    }
    let started = startLocked()
    if case .success = started {
      status.handedOut = true
      status.generation += 1
      publish()
    }
    releaseLifecycle()
    try started.get()
    return place
  }

  /// Stops the agent, wipes the slot folder, and starts a fresh one if `keepRunning`.
  public func recycle(keepRunning: Bool) async {
    await acquireLifecycle()
    await recycleLocked(keepRunning: keepRunning)
    releaseLifecycle()
  }

  private func recycleLocked(keepRunning: Bool) async {
    await stopLocked()
    dropEndpoint()
    status.handedOut = false
    status.wanted = keepRunning
    if keepRunning && install != nil { ensureSupervisor() }
    publish()
  }

  private func acquireLifecycle() async {
    guard lifecycleHeld else {
      lifecycleHeld = true
      return
    }
    await withCheckedContinuation { lifecycleWaiters.append($0) }
  }

  /// Hands the lifecycle to the next waiter in order (it stays held), or frees it.
  private func releaseLifecycle() {
    if lifecycleWaiters.isEmpty {
      lifecycleHeld = false
    } else {
      lifecycleWaiters.removeFirst().resume()
    }
  }

  /// Takes over an agent a previous daemon instance left running for a holder, in the place
  /// of `allocation`.
  public func adopt(pid: Int32, allocation: String) async -> Bool {
    guard process == nil, let watched = await context.launcher.attach(pid: pid), process == nil else { return false }
    process = watched
    resume(allocation: allocation)
    status.pid = pid
    status.phase = .starting
    status.wanted = true
    status.handedOut = true
    logger.notice("adopted the agent of the previous daemon", metadata: ["pid": "\(pid)"])
    ensureSupervisor()
    publish()
    return true
  }

  /// A held slot whose agent a previous daemon ran in the place of `allocation`: the next
  /// agent starts there again, since the holder's containers have that folder mounted.
  public func resume(allocation: String) {
    endpoint = context.addressing.endpoint(allocation: allocation)
    status.endpoint = endpoint?.listen.description
    if context.addressing.followsSandbox { status.sandboxSocket = allocation }
    status.handedOut = true
    publish()
  }

  /// Stops the agent (SIGTERM, grace period, SIGKILL) and supervision, and removes its socket
  /// (the agent never does). A holder's folder stays for the next daemon to start its agent in;
  /// an allocation nobody holds goes.
  public func stop(closing: Bool = false) async {
    await acquireLifecycle()
    if closing { closed = true }
    await stopLocked()
    if status.handedOut {
      if let endpoint { SlotFolder.removeSocket(endpoint) }
    } else {
      dropEndpoint()
      publish()
    }
    releaseLifecycle()
  }

  /// The daemon exits and an agent host keeps the agent: supervision ends here, and the
  /// agent, its socket and its folder stay for the next daemon to adopt.
  public func detach() {
    closed = true
    status.wanted = false
    supervisor?.cancel()
    backoffTimer?.cancel()
  }

  /// The allocation is over: its folder goes (unix), or its socket on the VM's side
  /// (hybrid-vsock), and the next agent gets a new place.
  private func dropEndpoint() {
    guard context.addressing.perAllocation, let endpoint else { return }
    SlotFolder.removeSocket(endpoint)
    SlotFolder.remove(endpoint)
    self.endpoint = nil
    status.endpoint = nil
    status.sandboxID = nil
    status.sandboxSocket = nil
  }

  // MARK: VM sandboxes (hybrid-vsock)

  /// The holder's VM sandbox is `id`, with its hybrid-vsock socket at `socket`: the agent
  /// listens on that VM's `<socket>_<port>` from now on. A different sandbox than before (the
  /// pod's sandbox was recreated) stops the old agent and removes its socket first. Starts
  /// nothing: `ensureReady` does.
  public func bind(sandboxID id: String, socket: String) async {
    await acquireLifecycle()
    defer { releaseLifecycle() }
    if endpoint?.allocation != socket {
      if endpoint != nil {
        logger.notice("the holder's VM sandbox changed; moving its agent", metadata: ["sandbox": "\(id)", "socket": "\(socket)"])
        await stopLocked()
        dropEndpoint()
      }
      let place = context.addressing.endpoint(allocation: socket)
      endpoint = place
      status.endpoint = place.listen.description
      status.handedOut = true
    }
    status.sandboxID = id
    status.sandboxSocket = socket
    publish()
  }

  /// The holder's VM sandbox is gone (`why`): its agent stops and its socket goes. The slot
  /// stays held; a new sandbox of the pod gets a new agent through `bind`.
  public func unbind(why: String) async {
    await acquireLifecycle()
    defer { releaseLifecycle() }
    guard context.addressing.followsSandbox, endpoint != nil else { return }
    logger.notice("the holder's VM sandbox is gone; stopping its agent", metadata: ["why": "\(why)", "sandbox": "\(status.sandboxID ?? "-")"])
    await stopLocked()
    dropEndpoint()
    status.lastError = nil
    publish()
  }

  /// The VM sandbox the agent is bound to: (id if known, its hybrid-vsock socket).
  public var sandbox: (id: String?, socket: String)? {
    guard context.addressing.followsSandbox, let endpoint else { return nil }
    return (status.sandboxID, endpoint.allocation)
  }

  private func stopLocked() async {
    status.wanted = false
    supervisor?.cancel()
    if let process {
      status.phase = .stopping
      publish()
      await terminate(process)
    }
    await supervisor?.value
    supervisor = nil
    process = nil
    status.pid = nil
    status.down = false
    if status.phase != .unavailable { status.phase = .stopped }
    failWaiters(.notReady("the agent was stopped"))
    publish()
  }

  /// Forwards the lines the agent wrote since the last call into the daemon's log, those at
  /// `agent.forwardLogs` or above (every line stays in the agent's own file); returns the
  /// last line that explains a failure (a panic, a known crash), if any.
  @discardableResult
  public func forwardLogs() -> String? {
    var explanation: String?
    let logger = self.logger  // made once for all the lines, not once a line
    for line in log.readNewLines() where !line.isEmpty {
      let severity = AgentLogLine.severity(of: line)
      let forwarded = AgentLogLine.forwards(severity, under: context.agent.forwardLogs)
      if forwarded {
        logger.log(level: severity.daemonLevel, "\(line)", metadata: ["source": "agent", "pid": "\(status.pid.map(String.init) ?? "-")"])
      }
      recentLines.append((line, forwarded))
      if recentLines.count > Self.tailLines { recentLines.removeFirst(recentLines.count - Self.tailLines) }
      explanation = KnownAgentFailures.explain(line) ?? explanation
    }
    return explanation
  }

  /// A stop we asked for explains nothing: the agent's last lines stay in its own file only
  /// (every agent stopped at a pod's end or a daemon's SIGTERM once logged its whole history).
  private func dropUnforwardedLines() {
    forwardLogs()
    recentLines.removeAll()
  }

  /// How much of a crashed agent's log goes into the daemon's, whatever `forwardLogs` says.
  static let tailLines = 20

  /// Why the agent ended, if anything says: its files changed under it (an install replaced
  /// in place), or its last words (a panic, a known crash). The lines it wrote last that were
  /// not forwarded go into the daemon's log now: what an operator needs after a crash.
  private func explainExit() -> String? {
    let lastWords = forwardLogs()
    let tail = recentLines.filter { !$0.forwarded }.map(\.line)
    recentLines.removeAll()
    let logger = self.logger
    for line in tail {
      logger.warning("\(line)", metadata: ["source": "agent", "tail": "true"])
    }
    guard let changed = startedFrom?.changedFiles(), !changed.isEmpty else { return lastWords }
    startedFrom = nil
    let files = changed.prefix(3).joined(separator: ", ") + (changed.count > 3 ? " and \(changed.count - 3) more" : "")
    logger.error(
      "agent died after its files changed under it: the vAccel install was replaced while agents ran from it; update it into a new folder and switch a symlink, or drain the node first (README: Updating the vAccel install)",
      metadata: ["changed": "\(files)"])
    return "its files changed while it ran (\(files))" + (lastWords.map { "; \($0)" } ?? "")
  }

  // MARK: Supervision

  private func ensureSupervisor() {
    guard supervisor == nil, !closed else { return }
    supervisor = Task { await self.supervise() }
  }

  private func supervise() async {
    defer { supervisor = nil }
    while status.wanted && !Task.isCancelled {
      let running: any AgentProcess
      if let adopted = process {
        running = adopted
      } else {
        guard let install else { return }
        do {
          running = try await launch(install)
        } catch {
          guard status.wanted && !Task.isCancelled else { return }
          status.lastError = error.description
          status.down = true
          guard await backOff(ranFor: .zero) else { return }
          continue
        }
      }
      let started = ContinuousClock.now
      guard let place = assignEndpoint() else {
        await terminate(running)
        process = nil
        status.pid = nil
        return
      }
      switch await waitForReadiness(of: running, at: place) {
      case .ready:
        status.phase = .ready
        status.down = false
        runFolderRetries = 0
        resumeWaiters()
        publish()
        context.onEvent(.ready(after: ContinuousClock.now - started))
        logger.info("agent ready", metadata: ["pid": "\(running.pid)"])
        // Up for `restartBackoff.resetAfter`: no longer crash-looping, back-off from scratch.
        let stable = Task { [resetAfter = context.agent.restartBackoffReset] in
          try await Task.sleep(for: resetAfter)
          self.markStable(running.pid)
        }
        let liveness = Task { await self.watchLiveness(of: running, at: place.probe) }
        let exit = await running.waitForExit()
        stable.cancel()
        liveness.cancel()
        let unresponsive = await liveness.value
        process = nil
        status.pid = nil
        guard status.wanted && !Task.isCancelled else { return dropUnforwardedLines() }
        let explanation = explainExit()
        context.onEvent(unresponsive ? .unresponsive : .exited(exit, restarting: true))
        status.restarts += 1
        status.down = true
        status.lastError = (unresponsive ? "agent stopped answering its probe and was killed" : "agent exited: \(exit)")
          + (explanation.map { ": \($0)" } ?? "")
        logger.warning("agent exited; restarting", metadata: ["status": "\(exit)"])
        guard await backOff(ranFor: ContinuousClock.now - started) else { return }
      case .failed(let why):
        if running.exitStatus == nil { await terminate(running) }
        process = nil
        status.pid = nil
        guard status.wanted && !Task.isCancelled else { return dropUnforwardedLines() }
        let explanation = explainExit()
        context.onEvent(.exited(running.exitStatus, restarting: true))
        if running.exitStatus == .exited(VaccelRunFolder.raceExitCode), runFolderRetries < VaccelRunFolder.immediateRetries {
          // Not a crash: libvaccel lost the race to create its run folder. Again, at once.
          runFolderRetries += 1
          logger.info(
            "libvaccel could not create its run folder; starting the agent again at once",
            metadata: ["folder": "\(context.vaccelRunFolder ?? VaccelRunFolder.defaultPath)"])
          continue
        }
        status.lastError = why + (explanation.map { ": \($0)" } ?? "")
        status.down = true
        logger.warning("agent did not become ready", metadata: ["error": "\(why)"])
        guard await backOff(ranFor: .zero) else { return }
      case .cancelled:
        return
      }
    }
  }

  /// Probes a ready agent every `liveness.interval`; after `liveness.failures` misses in a row
  /// (a hung agent: alive, socket accepting, no answers) it is SIGKILLed, which the supervisor
  /// treats as a crash. Returns whether it killed the agent.
  private func watchLiveness(of running: any AgentProcess, at address: AgentAddress) async -> Bool {
    let interval = context.agent.livenessInterval
    guard interval > .zero, context.agent.probe != .process else { return false }
    var misses = 0
    while (try? await Task.sleep(for: interval)) != nil, running.exitStatus == nil {
      do {
        try await probe.check(address)
        misses = 0
      } catch {
        misses += 1
        logger.warning("agent did not answer its liveness probe", metadata: ["pid": "\(running.pid)", "misses": "\(misses)", "error": "\(error)"])
        if misses >= context.agent.livenessFailures, !Task.isCancelled {
          _ = await running.signal(SIGKILL)
          return true
        }
      }
    }
    return false
  }

  /// Up for `restartBackoff.resetAfter`: the back-off starts from scratch, and the last error
  /// is history (a healthy slot showed a start-up failure as its error for 13 minutes).
  private func markStable(_ pid: Int32) {
    guard status.pid == pid, status.phase == .ready, status.consecutiveFailures > 0 || status.lastError != nil else { return }
    if status.consecutiveFailures > 0 { logger.notice("agent stable again", metadata: ["pid": "\(pid)"]) }
    status.consecutiveFailures = 0
    status.lastError = nil
    publish()
  }

  private func launch(_ install: AgentInstall) async throws(AgentError) -> any AgentProcess {
    // Lines of the previous agent first: a later crash's tail is this agent's own.
    forwardLogs()
    recentLines.removeAll()
    guard let place = assignEndpoint() else { throw .launch("the holder's VM sandbox is not known yet") }
    if context.addressing.followsSandbox, !Self.socketExists(place.allocation) {
      // The VM is gone (or not up): an agent could not even bind beside its socket.
      throw .launch("the VM sandbox's socket \(place.allocation) does not exist")
    }
    if let socket = place.socketPath, socket.utf8.count > Self.maxSocketPath {
      // Kata's jailed Firecracker (runtime-rs) keeps its socket 103 bytes deep; with "_2048" the
      // agent's could not be bound at all (the kernel's sun_path is 108 bytes with its NUL).
      throw .launch("the agent socket \(socket) is \(socket.utf8.count) bytes; unix sockets allow at most \(Self.maxSocketPath)")
    }
    SlotFolder.removeSocket(place)
    do {
      try SlotFolder.prepare(place, addressing: context.addressing, access: context.access)
    } catch {
      throw .launch("cannot prepare the slot folder: \(error)")
    }
    let arguments = context.agent.args.map {
      $0.replacingEvery(AgentConfig.addressPlaceholder, with: place.listen.description)
    }
    var environment = context.agent.environment
    environment["PATH"] = environment["PATH"] ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    environment[SlotAddressing.slotMarker] = context.slotID
    // libvaccel's run folder is made where the agent runs, before every start.
    let spec = LaunchSpec(
      executable: install.executable, arguments: arguments, environment: environment, logPath: context.logPath,
      prepareFolders: context.vaccelRunFolder.map { [$0] } ?? [])
    let launched: any AgentProcess
    do {
      launched = try await context.launcher.launchAgent(spec)
    } catch {
      throw .launch("cannot start \(install.executable): \(error)")
    }
    guard status.wanted, !closed, !Task.isCancelled, process == nil else {
      // Stopped (or closed) while the start was under way: nothing may outlive that.
      await launched.terminate(grace: context.agent.stopGracePeriod)
      throw .launch("stopped while the agent was starting")
    }
    process = launched
    startedFrom = InstallFingerprint(executable: install.executable, agent: context.agent)
    status.phase = .starting
    status.pid = launched.pid
    status.startedAt = Date()
    publish()
    logger.info("agent started", metadata: ["pid": "\(launched.pid)", "address": "\(place.listen)"])
    context.onEvent(.started)
    return launched
  }

  private enum Readiness { case ready, failed(String), cancelled }

  private func waitForReadiness(of running: any AgentProcess, at place: AgentEndpoint) async -> Readiness {
    let deadline = ContinuousClock.now + context.agent.readyTimeout
    var lastProbeError = "no answer yet"
    var interval = Self.firstStartPoll
    while !Task.isCancelled {
      if let exit = running.exitStatus {
        return .failed("agent \(exit) before it was ready")
      }
      // unix: until the agent has bound its socket, a probe cannot succeed; an lstat costs a
      // microsecond where a probe costs a connection attempt, so look often and probe once the
      // socket is there (PreStartContainer waits on this; the growing interval alone added
      // up to several ms after the bind).
      if let socket = place.socketPath, !Self.socketExists(socket) {
        lastProbeError = "no socket at \(socket) yet"
        guard ContinuousClock.now < deadline else {
          return .failed("agent not ready within \(context.agent.readyTimeout): \(lastProbeError)")
        }
        try? await Task.sleep(for: Self.socketPoll)
        continue
      }
      do {
        try await probe.check(place.probe)
        if running.exitStatus == nil {
          // Only now is the socket there to be given its owner and mode (the agent binds it
          // root-owned, not writable by others, so nobody else could connect before this).
          if let socket = place.socketPath {
            do {
              try FileAccess.set(socket, type: S_IFSOCK, uid: context.access.uid, gid: context.access.gid, mode: context.access.mode)
            } catch {
              return .failed("cannot set the agent socket's owner and mode: \(error)")
            }
          }
          return .ready
        }
      } catch {
        lastProbeError = "\(error)"
      }
      guard ContinuousClock.now < deadline else {
        return .failed("agent not ready within \(context.agent.readyTimeout): \(lastProbeError)")
      }
      try? await Task.sleep(for: interval)
      interval = min(interval * 1.5, Self.maxStartPoll)
    }
    return .cancelled
  }

  /// Waits before the next start; false when supervision should end instead.
  private func backOff(ranFor: Duration) async -> Bool {
    if ranFor >= context.agent.restartBackoffReset { status.consecutiveFailures = 0 }
    status.consecutiveFailures += 1
    status.phase = .backoff
    publish()
    failWaiters(.notReady(status.lastError ?? "agent down"))
    // A one-off crash restarts at once; from the second failure in a row, back off.
    guard status.consecutiveFailures > 1 else { return status.wanted && !Task.isCancelled }
    let exponent = min(status.consecutiveFailures - 2, 16)
    let delay = min(context.agent.restartBackoffInitial * (1 << exponent), context.agent.restartBackoffMax)
    let timer = Task { try await Task.sleep(for: delay) }
    backoffTimer = timer
    await withTaskCancellationHandler {
      _ = try? await timer.value  // ends early when kicked by ensureReady
    } onCancel: {
      timer.cancel()
    }
    backoffTimer = nil
    return status.wanted && !Task.isCancelled
  }

  private func terminate(_ running: any AgentProcess) async {
    await running.terminate(grace: context.agent.stopGracePeriod)
  }

  // MARK: Waiting for readiness

  private func waitUntilReady(within deadline: Duration) async throws(AgentError) {
    let id = UUID()
    let timer = Task {
      try await Task.sleep(for: deadline)
      self.expireWaiter(id, after: deadline)
    }
    defer { timer.cancel() }
    do {
      try await withCheckedThrowingContinuation { continuation in
        readyWaiters[id] = continuation
      }
    } catch let error as AgentError {
      throw error
    } catch {
      throw .notReady("\(error)")
    }
  }

  private func expireWaiter(_ id: UUID, after deadline: Duration) {
    let reason = status.lastError.map { ": \($0)" } ?? ""
    readyWaiters.removeValue(forKey: id)?.resume(throwing: AgentError.notReady("agent not ready within \(deadline)\(reason)"))
  }

  private func resumeWaiters() {
    let waiters = readyWaiters
    readyWaiters = [:]
    for waiter in waiters.values { waiter.resume() }
  }

  private func failWaiters(_ error: AgentError) {
    // Waiters of a slot that is merely restarting keep waiting for the next start (their own
    // deadline bounds them); a node problem or a stop ends them now.
    if case .notReady = error, status.wanted { return }
    let waiters = readyWaiters
    readyWaiters = [:]
    for waiter in waiters.values { waiter.resume(throwing: error) }
  }
}
