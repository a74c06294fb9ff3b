import DevicePlugin
import Foundation
import Glibc
import Testing
import VaccelAgents
import VaccelConfig

/// The whole hybrid-vsock path with a real guest kernel: a pod admitted through the kubelet
/// emulation, a CRI double reporting its sandbox, and that sandbox a real VM (QEMU under TCG,
/// vhost-device-vsock as its VMM's vsock device). Inside the guest a vAccel client dials
/// vsock://2:2048, as libvaccel-rpc.so would in a Kata guest, and makes a session round trip
/// with the pod's own agent, which the daemon started beside that VM's socket.
@Suite("A real guest VM as the pod's sandbox", .serialized)
struct GuestVMTests {
  static let port = 2048

  @Test(
    "a guest's vAccel call reaches its pod's agent over hybrid vsock, through a crash, until the pod goes",
    .enabled(if: GuestVM.missing.isEmpty || GuestVM.required, "needs scripts/install-guest-deps"))
  func aGuestReachesItsPodsAgentOverHybridVsock() async throws {
    try #require(GuestVM.missing.isEmpty, "missing for the guest VM: \(GuestVM.missing.joined(separator: ", ")); run scripts/install-guest-deps")
    let directory = try TestDirectory()
    let runtime = RuntimeServiceEmulator(socketPath: directory.sub("containerd.sock"))
    try await runtime.start()
    let podResources = FakePodResources()
    let uds = directory.sub("kata") + "/vm1/root/kata.hvsock"
    let harness = try await DaemonHarness.start(
      directory: directory,
      configure: { config in
        config.sandboxes = SandboxConfig(
          criSockets: [directory.sub("containerd.sock")], vmSockets: [directory.sub("kata") + "/{id}/root/kata.hvsock"])
        config.resources[0].transport = .hybridVsock
        config.resources[0].slots = 1
        config.resources[0].basePort = Self.port
      }, podResources: podResources)
    var vm: GuestVM?
    do {
      try await DaemonHarness.using(harness) { harness in
        try await harness.registered()
        // The kubelet's order: Allocate (admission), the pod listed, RunPodSandbox (the VM
        // boots), then PreStartContainer before the container starts.
        let reply = try await harness.kubelet.allocate(harness.resource, [["accel-0"]])
        let address = try #require(reply.containerResponses.first?.envs["VACCEL_RPC_ADDRESS"])
        #expect(address == "vsock://2:\(Self.port)")
        podResources.set(harness.resource, ["accel-0": Holder(namespace: "ml", pod: "classify", container: "app")])
        runtime.addSandbox(id: "vm1", namespace: "ml", pod: "classify", handler: "kata-fc")
        let guest = try await GuestVM.boot(uds: uds, in: directory.sub("vm"))
        vm = guest
        try await harness.kubelet.preStart(harness.resource, ["accel-0"])
        let ready = try await harness.manager.waitForSlot("accel-0", timeout: .seconds(20)) { $0.agent.phase == .ready }
        #expect(ready.agent.endpoint == "unix://\(uds)_\(Self.port)")
        #expect(ready.agent.sandboxID == "vm1")

        let first = try await guest.command("probe \(Self.port)")
        #expect(first.hasPrefix("ok "), "the guest's first call: \(first)")

        // The agent crashes; the guest's next call succeeds once the daemon has it back.
        let pid = try #require(ready.agent.pid)
        kill(pid, SIGKILL)
        _ = try await harness.manager.waitForSlot("accel-0", timeout: .seconds(20)) { $0.agent.phase == .ready && $0.agent.pid != pid }
        let second = try await guest.command("probe \(Self.port)")
        #expect(second.hasPrefix("ok "), "the guest's call after the restart: \(second)")

        // The pod goes: its agent stops and its socket is removed; the guest reaches nothing.
        podResources.set(harness.resource, [:])
        try await harness.daemon.podResources.pollOnce()
        // The recycle stops the agent (no pid), then drops its place (no socket): wait for both.
        let freed = try await harness.manager.waitForSlot("accel-0", timeout: .seconds(20)) {
          !$0.allocated && $0.agent.pid == nil && $0.agent.sandboxSocket == nil
        }
        #expect(freed.agent.endpoint == nil)
        #expect(!FileManager.default.fileExists(atPath: uds + "_\(Self.port)"))
        #expect(ProcessInfoReader.processes(withArgument: "unix://\(uds)_\(Self.port)").isEmpty)
        let third = try await guest.command("probe \(Self.port)")
        #expect(third.hasPrefix("fail "), "the guest's call after the pod went: \(third)")

        #expect(await guest.powerOff() == 0, "QEMU exits cleanly when the guest powers off")
        vm = nil
      }
    } catch {
      await vm?.stop()
      await runtime.stop()
      throw error
    }
    await runtime.stop()
  }
}
