import CRIClient
import DevicePlugin
import Foundation
import Glibc
import GRPCCore
import NodeSupport
import Testing
import VaccelAgentAPI
import VaccelAgents
import VaccelConfig
import VaccelRPC

/// transport hybrid-vsock without a VM: the kubelet, pod-resources and the container runtime's
/// CRI are emulated over real sockets, and a VM's hybrid-vsock socket is a listening unix
/// socket where Kata's VMM would keep it. The stand-in agent is the real agent's double.
/// (GuestVMTests runs the same path with a real guest kernel dialing vsock://2:<port>.)
@Suite("hybrid-vsock: per-sandbox agents")
struct HybridVsockTests {
  static let timeout: Duration = .seconds(20)
  static let port = 2048

  /// A VMM's hybrid-vsock socket: something listening at the path, as Firecracker or
  /// vhost-device-vsock would.
  final class FakeVMSocket {
    let path: String
    private var fd: Int32

    init(_ path: String) throws {
      try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
      self.path = path
      fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
      var address = sockaddr_un()
      address.sun_family = sa_family_t(AF_UNIX)
      withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: path.utf8.prefix($0.count - 1)) }
      let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
      }
      try #require(bound == 0 && listen(fd, 4) == 0, "cannot listen on \(path)")
    }

    /// The VM goes: its socket and its folder (Kata removes the sandbox's folder).
    func remove() {
      closeOnce()
      try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent)
    }

    /// Never twice: a second close could hit a descriptor another thread opened since.
    private func closeOnce() {
      if fd >= 0 { close(fd) }
      fd = -1
    }

    deinit { closeOnce() }
  }

  struct Node {
    let harness: DaemonHarness
    let runtime: RuntimeServiceEmulator
    let podResources: FakePodResources
    let sandboxRoot: String

    func vmSocket(_ id: String) -> String { "\(sandboxRoot)/\(id)/root/kata.hvsock" }

    func agentSocket(_ id: String) -> String { vmSocket(id) + "_\(HybridVsockTests.port)" }

    func ready(_ slot: String, where predicate: @escaping @Sendable (SlotState) -> Bool = { _ in true }) async throws -> SlotState {
      try await harness.manager.waitForSlot(slot, timeout: HybridVsockTests.timeout) { $0.agent.phase == .ready && predicate($0) }
    }
  }

  static func withNode(lookupTimeout: Duration = .seconds(5), readyTimeout: Duration = .seconds(10), _ body: (Node) async throws -> Void) async throws {
    let directory = try TestDirectory()
    let runtime = RuntimeServiceEmulator(socketPath: directory.sub("containerd.sock"))
    try await runtime.start()
    let podResources = FakePodResources()
    let sandboxRoot = directory.sub("kata")
    let harness = try await DaemonHarness.start(
      directory: directory,
      configure: { config in
        config.sandboxes = SandboxConfig(
          criSockets: [directory.sub("missing.sock"), directory.sub("containerd.sock")],
          vmSockets: [directory.sub("elsewhere/{id}/clh.sock"), sandboxRoot + "/{id}/root/kata.hvsock"],
          lookupTimeout: lookupTimeout)
        config.resources[0].transport = .hybridVsock
        config.resources[0].slots = 2
        config.resources[0].basePort = port
        config.resources[0].agent.readyTimeout = readyTimeout
      }, podResources: podResources)
    do {
      try await DaemonHarness.using(harness) { harness in
        try await harness.registered()
        try await body(Node(harness: harness, runtime: runtime, podResources: podResources, sandboxRoot: sandboxRoot))
      }
      await runtime.stop()
    } catch {
      await runtime.stop()
      throw error
    }
  }

  static func session(_ socket: String) async throws -> Int64 {
    let reply = try await TTRPCClient.withConnection(to: .unix(path: socket), timeout: .seconds(5)) {
      try await $0.call(
        service: VaccelAgentService.sync, method: "CreateSession", request: Vaccel_Session_CreateRequest(),
        as: Vaccel_Session_CreateResponse.self)
    }
    return reply.sessionID
  }

  @Test func aPodsAgentListensBesideItsOwnVMAndFollowsIt() async throws {
    try await Self.withNode { node in
      let harness = node.harness
      // Admission: the reply names the host over vsock, mounts nothing, starts nothing.
      let reply = try await harness.kubelet.allocate(harness.resource, [["accel-0"]])
      let container = try #require(reply.containerResponses.first)
      #expect(container.envs["VACCEL_RPC_ADDRESS"] == "vsock://2:\(Self.port)")
      #expect(container.envs["VACCEL_PLUGINS"] == "libvaccel-rpc.so")
      #expect(container.mounts.isEmpty)
      #expect(await harness.manager.slotStates[0].agent.pid == nil)

      // RunPodSandbox: the VM boots, its VMM makes the socket; then PreStartContainer.
      let holder = Holder(namespace: "ml", pod: "classify", container: "app")
      node.podResources.set(harness.resource, ["accel-0": holder])
      node.runtime.addSandbox(id: "sb1", namespace: "ml", pod: "classify")
      let vm = try FakeVMSocket(node.vmSocket("sb1"))
      try await harness.kubelet.preStart(harness.resource, ["accel-0"])
      let first = try await node.ready("accel-0")
      #expect(first.agent.sandboxID == "sb1")
      #expect(first.agent.sandboxSocket == vm.path)
      #expect(first.agent.endpoint == "unix://\(node.agentSocket("sb1"))")
      #expect(try await Self.session(node.agentSocket("sb1")) > 0)

      // A crash: the agent comes back on the same VM's socket.
      let pid = try #require(first.agent.pid)
      kill(pid, SIGKILL)
      let back = try await node.ready("accel-0") { $0.agent.pid != pid }
      #expect(back.agent.endpoint == first.agent.endpoint)
      #expect(try await Self.session(node.agentSocket("sb1")) > 0)

      // The pod's sandbox is recreated (a new id, a new VM): the agent moves with it.
      node.runtime.removeSandbox(id: "sb1")
      vm.remove()
      node.runtime.addSandbox(id: "sb2", namespace: "ml", pod: "classify", attempt: 1)
      let vm2 = try FakeVMSocket(node.vmSocket("sb2"))
      try await harness.daemon.podResources.pollOnce()
      let moved = try await node.ready("accel-0") { $0.agent.sandboxID == "sb2" }
      #expect(moved.agent.sandboxSocket == vm2.path)
      #expect(try await Self.session(node.agentSocket("sb2")) > 0)
      #expect(!FileManager.default.fileExists(atPath: node.agentSocket("sb1")))

      // The pod goes: its agent stops and its socket is removed.
      let last = try #require(moved.agent.pid)
      node.podResources.set(harness.resource, [:])
      try await harness.daemon.podResources.pollOnce()
      // The recycle stops the agent (published: no pid) and then drops its place (no socket):
      // wait for the end of it, not for its first step.
      let freed = try await harness.manager.waitForSlot("accel-0", timeout: Self.timeout) {
        !$0.allocated && $0.agent.pid == nil && $0.agent.sandboxSocket == nil
      }
      #expect(freed.agent.endpoint == nil)
      #expect(!FileManager.default.fileExists(atPath: node.agentSocket("sb2")))
      #expect(kill(last, 0) != 0, "the agent process is gone")
      #expect(FileManager.default.fileExists(atPath: vm2.path), "the VM's own socket is the VMM's, never ours to remove")
    }
  }

  @Test func aVMThatGoesTakesItsAgentWithIt() async throws {
    try await Self.withNode { node in
      let harness = node.harness
      _ = try await harness.kubelet.allocate(harness.resource, [["accel-1"]])
      node.podResources.set(harness.resource, ["accel-1": Holder(namespace: "ml", pod: "infer", container: "app")])
      node.runtime.addSandbox(id: "vm-a", namespace: "ml", pod: "infer")
      let vm = try FakeVMSocket(node.vmSocket("vm-a"))
      try await harness.kubelet.preStart(harness.resource, ["accel-1"])
      let pid = try #require(try await node.ready("accel-1").agent.pid)

      vm.remove()
      try await harness.daemon.podResources.pollOnce()
      let stopped = try await harness.manager.waitForSlot("accel-1", timeout: Self.timeout) { $0.agent.pid == nil && $0.agent.sandboxSocket == nil }
      #expect(stopped.allocated, "the pod still holds the slot; a new VM of it gets a new agent")
      #expect(kill(pid, 0) != 0)
      #expect(!FileManager.default.fileExists(atPath: node.agentSocket("vm-a")))
    }
  }

  @Test func noSandboxInTimeIsUnavailableNamingWhatWasTried() async throws {
    try await Self.withNode(lookupTimeout: .milliseconds(500)) { node in
      let harness = node.harness
      _ = try await harness.kubelet.allocate(harness.resource, [["accel-0"]])
      node.podResources.set(harness.resource, ["accel-0": Holder(namespace: "ml", pod: "plain", container: "app")])
      let error = await #expect(throws: RPCError.self) { try await harness.kubelet.preStart(harness.resource, ["accel-0"]) }
      #expect(error?.code == .unavailable)
      #expect(error?.message.contains("lists no ready sandbox of pod ml/plain") == true, "\(error?.message ?? "")")
      #expect(error?.message.contains(node.harness.directory.sub("containerd.sock")) == true)

      // A sandbox whose VM has no hybrid-vsock socket (a QEMU VM, or runc): every path named.
      node.runtime.addSandbox(id: "q1", namespace: "ml", pod: "plain", handler: "kata-qemu")
      let again = await #expect(throws: RPCError.self) { try await harness.kubelet.preStart(harness.resource, ["accel-0"]) }
      #expect(again?.message.contains(node.vmSocket("q1")) == true, "\(again?.message ?? "")")
      #expect(again?.message.contains("kata-qemu") == true)
    }
  }

  /// A VM socket so deep that `_2048` cannot follow it in a unix socket path: a clear error at
  /// PreStartContainer, not an agent that panics at bind in a loop.
  @Test func aSocketPathTooLongIsNamedAtPreStart() async throws {
    // Long enough for a busy machine to have tried the start once (the error names its cause).
    try await Self.withNode(readyTimeout: .seconds(3)) { node in
      let harness = node.harness
      _ = try await harness.kubelet.allocate(harness.resource, [["accel-0"]])
      node.podResources.set(harness.resource, ["accel-0": Holder(namespace: "ml", pod: "deep", container: "app")])
      // <sandboxRoot>/<id>/root/kata.hvsock at exactly 104 bytes: bindable, but not with "_2048".
      let id = String(repeating: "d", count: 104 - node.vmSocket("").utf8.count)
      node.runtime.addSandbox(id: id, namespace: "ml", pod: "deep")
      let vm = try FakeVMSocket(node.vmSocket(id))
      #expect(vm.path.utf8.count == 104)
      let error = await #expect(throws: RPCError.self) { try await harness.kubelet.preStart(harness.resource, ["accel-0"]) }
      #expect(error?.code == .unavailable)
      #expect(error?.message.contains("is 109 bytes; unix sockets allow at most 107") == true, "\(error?.message ?? "")")
    }
  }

  /// The real daemon binary, SIGKILLed while a VM's agent runs, and started again.
  @Test func aRestartedDaemonAdoptsTheAgentOfARunningVM() async throws {
    let directory = try TestDirectory()
    let kubelet = FakeKubelet(directory: directory.sub("dp"))
    let podResources = FakePodResourcesServer(socketPath: directory.sub("pr.sock"))
    let runtime = RuntimeServiceEmulator(socketPath: directory.sub("containerd.sock"))
    try await kubelet.start()
    try await podResources.start()
    try await runtime.start()
    defer { Task { await kubelet.stop(); await podResources.stop(); await runtime.stop() } }
    let configPath = directory.sub("config.yaml")
    try """
      version: v1
      kubelet:
        devicePluginDir: \(directory.sub("dp"))
        podResourcesSocket: \(directory.sub("pr.sock"))
        podResourcesInterval: 1s
        allocationGrace: 10s
      runDir: \(directory.sub("run"))
      stateDir: \(directory.sub("state"))
      metrics: {address: ""}
      sandboxes:
        criSockets: [\(directory.sub("containerd.sock"))]
        vmSockets: ["\(directory.sub("kata"))/{id}/root/kata.hvsock"]
      agent:
        binary: \(Fixtures.standinAgent)
        stopGracePeriod: 2s
      resources:
        - name: vaccel.org/accel
          slots: 1
          transport: hybrid-vsock
          basePort: \(Self.port)
      """.write(toFile: configPath, atomically: true, encoding: .utf8)
    var daemon = try ChildProcess(Fixtures.daemon, ["--config", configPath])
    _ = try await kubelet.wait(for: "registration") { $0.healthy("vaccel.org/accel") == 1 }
    // The kubelet's order: Allocate, the pod listed, RunPodSandbox, PreStartContainer.
    _ = try await kubelet.allocate("vaccel.org/accel", [["accel-0"]])
    podResources.set("vaccel.org/accel", holders: ["accel-0": Holder(namespace: "ml", pod: "keep", container: "app")])
    runtime.addSandbox(id: "sb-keep", namespace: "ml", pod: "keep")
    let vm = try FakeVMSocket(directory.sub("kata") + "/sb-keep/root/kata.hvsock")
    let agentSocket = vm.path + "_\(Self.port)"
    try await kubelet.preStart("vaccel.org/accel", ["accel-0"])
    let before = try await waitForCheckpoint(stateDir: directory.sub("state")) { $0.first?.pid != nil }
    let pid = try #require(before.first?.pid)
    #expect(before.first?.endpoint == "unix://\(agentSocket)")
    #expect(ProcessInfoReader.environmentValue(SlotAddressing.slotMarker, of: pid) == "accel-0")

    kill(daemon.process.processIdentifier, SIGKILL)
    _ = await daemon.wait()
    daemon = try ChildProcess(Fixtures.daemon, ["--config", configPath])
    _ = try await kubelet.wait(for: "registration after restart") { $0.registrations >= 2 && $0.healthy("vaccel.org/accel") == 1 }
    _ = try await waitForCheckpoint(stateDir: directory.sub("state")) { $0.first?.pid == pid && $0.first?.allocated == true }
    #expect(ProcessInfoReader.processes(withArgument: "unix://" + agentSocket) == [pid], "adopted, not duplicated")
    #expect(try await Self.session(agentSocket) > 0)

    // The pod goes while the new daemon runs: the adopted agent stops, its socket goes.
    podResources.set("vaccel.org/accel", holders: [:])
    _ = try await waitForCheckpoint(stateDir: directory.sub("state")) { $0.first?.allocated == false && $0.first?.pid == nil }
    #expect(!FileManager.default.fileExists(atPath: agentSocket))
    kill(daemon.process.processIdentifier, SIGTERM)
    #expect(await daemon.wait() == 0)
    withExtendedLifetime(vm) {}
  }
}
