#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
public import Logging
import NodeSupport
public import VaccelConfig
import VaccelRPC

/// The agents of one resource: a `SlotAgent` per slot, the node checks that gate them, the
/// warm pool, and forwarding of their logs.
public actor AgentPool {
  public nonisolated let resource: ResourceConfig
  public nonisolated let slots: [SlotAgent]
  /// The index of a slot each time its status changes, in order; the status itself is the
  /// slot's `snapshot`, read when the change is handled. Indexes, not statuses: the stream's
  /// buffer keeps the size it grew to in the start-up burst (a change per slot), and a status
  /// each made that 0.15 KiB per slot for good.
  public nonisolated let statusChanges: AsyncStream<Int>
  private let logDirectory: String
  private let searchPath: String?
  private let vaccelRunFolder: String?
  private var runFolderProblem: String?
  private var held: Set<Int> = []
  /// Free slots this pool keeps a fresh agent on; its own bookkeeping, so topping up costs no
  /// visit to every slot.
  private var warmSlots: Set<Int> = []
  private var install: Result<AgentInstall, AgentError>?
  let launcher: any ProcessLaunching
  let logger: Logger

  public init(
    resource: ResourceConfig, runDir: String, stateDir: String, launcher: any ProcessLaunching,
    searchPath: String?, vaccelRunFolder: String? = VaccelRunFolder.defaultPath, logger: Logger,
    onEvent: @escaping @Sendable (AgentEvent) -> Void = { _ in }
  ) {
    self.resource = resource
    self.searchPath = searchPath
    self.vaccelRunFolder = vaccelRunFolder
    self.launcher = launcher
    self.logDirectory = stateDir.joiningPath("agents").joiningPath(resource.slug)
    var logger = logger
    logger[metadataKey: "resource"] = "\(resource.name)"
    self.logger = logger
    let (changes, continuation) = AsyncStream.makeStream(of: Int.self)
    self.statusChanges = changes
    let logDirectory = self.logDirectory
    let shared = SlotAgentContext.Shared(
      agent: resource.agent, access: resource.endpoint, launcher: launcher, logger: logger,
      vaccelRunFolder: vaccelRunFolder, onEvent: onEvent)
    self.slots = (0..<resource.slots).map { index in
      let addressing = SlotAddressing(resource: resource, runDir: runDir, slot: index)
      let context = SlotAgentContext(
        addressing: addressing, logPath: logDirectory.joiningPath("\(addressing.slotID).log"), shared: shared)
      return SlotAgent(context: context, changes: continuation)
    }
  }

  /// The pool's background work until cancelled: node checks every `nodeCheckInterval`
  /// (the node may be fixed, or broken, at any time) and log forwarding on inotify events.
  public func run() async {
    do {
      try Directories.create(logDirectory, mode: 0o750)
    } catch {
      logger.error("cannot create the agent log folder", metadata: ["error": "\(error)"])
    }
    let logChanges = try? InotifyWatcher(includeModifications: true).changedNames(in: logDirectory)
    await withDiscardingTaskGroup { group in
      if let logChanges {
        group.addTask {
          // Work per changed log file, never per slot: a busy agent costs nothing to the others.
          for await names in logChanges {
            for index in names.compactMap(self.slot(ofLog:)) { await self.slots[index].forwardLogs() }
          }
        }
      }
      group.addTask {
        repeat {
          await self.checkNode()
        } while (try? await Task.sleep(for: self.resource.agent.nodeCheckInterval)) != nil
      }
    }
  }

  /// The slot whose log file `name` is ("<slot-id>.log"), by the index its id ends in, checked
  /// against that slot's id: a table from names to slots cost about 50 bytes a slot.
  nonisolated func slot(ofLog name: String) -> Int? {
    guard name.hasSuffix(".log"), let dash = name.lastIndex(of: "-"),
      let index = Int(name[name.index(after: dash)..<name.index(name.endIndex, offsetBy: -4)]),
      slots.indices.contains(index), name == slots[index].context.slotID + ".log"
    else { return nil }
    return index
  }

  /// Runs the node checks now and applies the result to every slot if it changed; then tops up
  /// the warm pool, unless `topUp` is false (before recovery, which must see the slots as the
  /// previous daemon left them).
  public func checkNode(topUp: Bool = true) async {
    if let vaccelRunFolder {
      // Said once per change, not every check.
      var problem: String?
      do {
        try VaccelRunFolder.prepare(vaccelRunFolder)
      } catch {
        problem = "\(error)"
      }
      if let problem, problem != runFolderProblem {
        logger.warning("cannot make libvaccel's run folder; agents may fail to start", metadata: ["folder": "\(vaccelRunFolder)", "error": "\(problem)"])
      }
      runFolderProblem = problem
    }
    let result = AgentInstall.check(resource.agent, path: searchPath)
    guard result != install else {
      if topUp { await topUpWarm() }
      return
    }
    switch result {
    case .success(let found): logger.notice("agent install found", metadata: ["binary": "\(found.executable)"])
    case .failure(let problem): logger.error("node cannot run agents", metadata: ["reason": "\(problem)"])
    }
    install = result
    for slot in slots { await slot.setInstall(result) }
    if topUp { await topUpWarm() }
  }

  /// A fresh agent for a new holder of slot `index` (ready if it was warm, starting
  /// otherwise), and where it listens.
  /// nil for a slot that follows its holder's VM sandbox: nothing starts before `bind`.
  public func handOut(_ index: Int) async throws(AgentError) -> AgentEndpoint? {
    held.insert(index)
    warmSlots.remove(index)
    defer { Task { await self.topUpWarm() } }
    return try await slots[index].handOut()
  }

  /// The held slot's agent, running and ready (container start; daemon restart).
  public func ensureReady(_ index: Int, within deadline: Duration) async throws(AgentError) {
    held.insert(index)
    warmSlots.remove(index)
    try await slots[index].ensureReady(within: deadline)
  }

  /// hybrid-vsock: the holder of slot `index` runs in VM sandbox `id`, whose hybrid-vsock
  /// socket is `socket`; its agent listens beside it from now on (see `SlotAgent.bind`).
  public func bind(_ index: Int, sandboxID id: String, socket: String) async {
    held.insert(index)
    await slots[index].bind(sandboxID: id, socket: socket)
  }

  /// Marks slot `index` held by someone we learned of (pod-resources, checkpoint) without
  /// waiting for its agent.
  public func markHeld(_ index: Int) {
    held.insert(index)
    warmSlots.remove(index)
  }

  /// The holder is gone: recycle the agent (stopped, folder wiped) and refill the warm pool.
  public func release(_ index: Int) async {
    held.remove(index)
    await slots[index].recycle(keepRunning: false)
    await topUpWarm()
  }

  /// The daemon exits. Its own agents stop with it; an agent host's keep running, with their
  /// sockets and folders, so that their holders' calls go on while the next daemon starts and
  /// adopts them (a rollout costs running pods nothing).
  public func stopAll() async {
    warmSlots.removeAll()
    if launcher.agentsOutliveDaemon {
      for slot in slots { await slot.detach() }
      return
    }
    await withDiscardingTaskGroup { group in
      // Closing: a start asked for after this (a held slot being taken on) starts nothing.
      for slot in slots { group.addTask { await slot.stop(closing: true) } }
    }
  }

  /// Keeps `warm` free slots with an agent that never served anyone.
  private func topUpWarm() async {
    guard resource.warm > warmSlots.count, case .success = install else { return }
    var needed = resource.warm - warmSlots.count
    for index in slots.indices where needed > 0 && !held.contains(index) && !warmSlots.contains(index) {
      warmSlots.insert(index)
      await slots[index].keepWarm()
      needed -= 1
    }
  }
}
