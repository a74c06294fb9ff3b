import DevicePlugin
import Foundation
import Glibc
import KubeletAPI
import Synchronization
import Testing
import VaccelAgentAPI
import VaccelAgents
import VaccelRPC

/// A pod being deleted keeps its container, and so its mount, for a while after the kubelet has
/// handed its device to the next pod. It must never reach the next pod's agent.
@Suite("Isolation through pod turnover")
struct IsolationTests {
  static let timeout: Duration = .seconds(20)

  /// Connects to the unix socket at `path` and returns the pid of the process that accepted,
  /// or nil if nothing did.
  static func peer(_ path: String) -> Int32? {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
      raw.copyBytes(from: path.utf8.prefix(raw.count - 1))
    }
    let connected = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard connected == 0 else { return nil }
    // struct ucred { pid_t pid; uid_t uid; gid_t gid; } (Glibc hides it behind _GNU_SOURCE).
    var credentials: (pid: Int32, uid: UInt32, gid: UInt32) = (0, 0, 0)
    var length = socklen_t(MemoryLayout.size(ofValue: credentials))
    guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0 else { return nil }
    return credentials.pid
  }

  /// A deleted pod's client dialing through its mount, on a thread of its own, until stopped:
  /// every dial's answer (the accepting pid, or nil).
  final class Dialer: Sendable {
    private let stopped = Atomic<Bool>(false)
    private let results = Mutex<[Int32?]>([])
    private let done = Mutex<CheckedContinuation<Void, Never>?>(nil)
    private let finished = Atomic<Bool>(false)

    init(path: String) {
      Thread { [self] in
        while !stopped.load(ordering: .relaxed) {
          let answer = IsolationTests.peer(path)
          results.withLock { $0.append(answer) }
          usleep(200)  // the client's call rate, not a wait for anything
        }
        finished.store(true, ordering: .sequentiallyConsistent)
        done.withLock { $0?.resume(); $0 = nil }
      }.start()
    }

    /// Stops dialing and returns every answer.
    func stop() async -> [Int32?] {
      stopped.store(true, ordering: .relaxed)
      await withCheckedContinuation { continuation in
        let resumeNow = done.withLock { waiting -> Bool in
          if finished.load(ordering: .sequentiallyConsistent) { return true }
          waiting = continuation
          return false
        }
        if resumeNow { continuation.resume() }
      }
      return results.withLock { $0 }
    }
  }

  func pid(_ harness: DaemonHarness, _ slot: String) async throws -> Int32 {
    try #require(try await harness.manager.waitForSlot(slot, timeout: Self.timeout) { $0.agent.phase == .ready }.agent.pid)
  }

  @Test func aDeletedPodKeepsDialingButNeverReachesTheNextHoldersAgent() async throws {
    let harness = try await DaemonHarness.start()
    try await DaemonHarness.using(harness) { harness in
      try await harness.registered()
      var holder = try await harness.kubelet.admit(harness.resource, [["accel-0"]])
      var agent = try await pid(harness, "accel-0")
      for round in 0..<10 {
        // The container's mount, held as the kernel holds a bind mount: by the folder itself,
        // whatever happens to its name on the host.
        let mount = open(try holder.hostFolder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        try #require(mount >= 0)
        defer { close(mount) }
        let throughMount = "/proc/self/fd/\(mount)/vaccel.sock"
        #expect(Self.peer(throughMount) == agent, "round \(round): the holder reaches its own agent")

        // The pod is deleted, its client keeps dialing, and the kubelet gives the device to
        // the next pod before any poll of ours noticed the first one gone.
        let dialer = Dialer(path: throughMount)
        let next = try await harness.kubelet.admit(harness.resource, [["accel-0"]])
        let nextAgent = try await pid(harness, "accel-0")
        let nextSession = try await TTRPCClient.withConnection(to: .unix(path: try next.hostSocket), timeout: .seconds(5)) {
          try await $0.call(
            service: VaccelAgentService.sync, method: "CreateSession", request: Vaccel_Session_CreateRequest(),
            as: Vaccel_Session_CreateResponse.self)
        }
        let answers = await dialer.stop()

        #expect(nextAgent != agent)
        #expect(try next.hostFolder != holder.hostFolder, "round \(round): a folder of the allocation's own")
        #expect(!FileManager.default.fileExists(atPath: try holder.hostFolder), "round \(round): the old folder is gone")
        let reached = Set(answers.compactMap { $0 })
        #expect(reached.isSubset(of: [agent]), "round \(round): the deleted pod reached \(reached)")
        #expect(answers.last == .some(nil), "round \(round): the deleted pod's dials fail")
        #expect(nextSession.sessionID > 0)
        #expect(Self.peer(throughMount) == nil)
        #expect(Self.peer(try next.hostSocket) == nextAgent)
        holder = next
        agent = nextAgent
      }
    }
  }
}
