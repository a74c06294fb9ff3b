import Foundation
import KubeletEmulation
import Testing
import VaccelAgents
import VaccelConfig
import VaccelManifests
@testable import VaccelCtlKit

// Serialized: one test checks that no trial agent is left, which another test's trial in flight would fail.
@Suite("vaccelctl doctor", .serialized)
struct DoctorTests {
  func config(_ scratch: Scratch, binary: String) -> DaemonConfig {
    var agent = AgentConfig()
    agent.binary = binary
    return DaemonConfig(
      kubelet: KubeletConfig(devicePluginDir: scratch.sub("dp"), podResourcesSocket: scratch.sub("pr.sock")),
      runDir: scratch.sub("run"), stateDir: scratch.sub("state"), agent: agent,
      resources: [
        ResourceConfig(name: "vaccel.org/accel", agent: agent),
        ResourceConfig(name: "vaccel.org/accel-fc", agents: .runtime, agent: agent),
      ])
  }

  @Test func aReadyNodePassesEveryCheck() async throws {
    let scratch = try Scratch()
    defer { scratch.remove() }
    let kubelet = KubeletEmulator(directory: scratch.sub("dp"))
    try await kubelet.start()
    let podResources = PodResourcesEmulator(socketPath: scratch.sub("pr.sock"))
    try await podResources.start()
    var doctor = Doctor(config: config(scratch, binary: Repository.built("vaccel-standin-agent")))
    doctor.k3sDataDir = scratch.sub("no-k3s")
    let checks = await doctor.run()
    await kubelet.stop()
    await podResources.stop()
    let failed = checks.filter { $0.outcome == .fail }
    #expect(failed.isEmpty, "\(failed)")
    #expect(Doctor.exitCode(checks) == 0)
    // Started as the daemon starts it, one session round trip, stopped (no `--version`).
    let runs = checks.first { $0.name == "agent for vaccel.org/accel: runs" }
    #expect(runs?.outcome == .pass && runs?.detail.contains("a session round trip after") == true, "\(String(describing: runs))")
    #expect(checks.contains { $0.name == "agent for vaccel.org/accel-fc" && $0.outcome == .skip })
    #expect(checks.contains { $0.name == "k3s" && $0.outcome == .skip })
    #expect(Doctor.render(checks).hasSuffix("all passed (1 warning)\n"))  // the daemon is not running
  }

  /// hybrid-vsock: the runtime's CRI socket is asked as the daemon asks it; vsock says plainly
  /// that it does not isolate pods.
  @Test func vmTransportsAreCheckedAndVsockIsNotCalledIsolated() async throws {
    let scratch = try Scratch()
    defer { scratch.remove() }
    var config = config(scratch, binary: Repository.built("vaccel-standin-agent"))
    config.resources = [
      ResourceConfig(name: "vaccel.org/accel-hvsock", transport: .hybridVsock, agent: config.agent),
      ResourceConfig(name: "vaccel.org/accel-vm", transport: .vsock, agent: config.agent),
    ]
    config.sandboxes = SandboxConfig(criSockets: [scratch.sub("nope.sock")], vmSockets: [scratch.sub("kata") + "/{id}/root/kata.hvsock"])
    var doctor = Doctor(config: config)
    doctor.k3sDataDir = scratch.sub("no-k3s")
    var byName = Dictionary(await doctor.run().map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    #expect(byName["container runtime (CRI)"]?.outcome == .fail)
    #expect(byName["container runtime (CRI)"]?.detail.contains(scratch.sub("nope.sock")) == true)
    #expect(byName["VM sandbox folders"]?.outcome == .warn)
    #expect(byName["vsock isolation"]?.outcome == .warn)
    #expect(byName["vsock isolation"]?.detail.contains("not isolated") == true)

    let runtime = RuntimeServiceEmulator(socketPath: scratch.sub("containerd.sock"))
    try await runtime.start()
    runtime.addSandbox(id: "sb1", namespace: "ml", pod: "a")
    try FileManager.default.createDirectory(atPath: scratch.sub("kata"), withIntermediateDirectories: true)
    doctor.config.sandboxes.criSockets = [scratch.sub("nope.sock"), scratch.sub("containerd.sock")]
    byName = Dictionary(await doctor.run().map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    await runtime.stop()
    #expect(byName["container runtime (CRI)"]?.outcome == .pass)
    #expect(byName["container runtime (CRI)"]?.detail == "\(scratch.sub("containerd.sock")) lists 1 ready pod sandbox")
    #expect(byName["VM sandbox folders"]?.outcome == .pass)
  }

  /// With agentHost.socket set, the host must answer: the real one passes with what it runs,
  /// a missing one fails saying what to look at.
  @Test func theAgentHostIsAskedWhenTheConfigUsesOne() async throws {
    let scratch = try Scratch()
    defer { scratch.remove() }
    var doctor = Doctor(config: config(scratch, binary: Repository.built("vaccel-standin-agent")))
    doctor.k3sDataDir = scratch.sub("no-k3s")
    doctor.config.agentHostSocket = scratch.sub("host/agent-host.sock")
    var check = await doctor.run().first { $0.name == "agent host" }
    #expect(check?.outcome == .fail)
    #expect(check?.detail.contains("is the vaccel-agent-host pod running on this node?") == true, "\(String(describing: check))")

    let host = Process()
    host.executableURL = URL(fileURLWithPath: Repository.built("vaccel-device-plugin"))
    host.arguments = ["agent-host", "--socket", scratch.sub("host/agent-host.sock")]
    host.standardError = FileHandle.nullDevice
    try host.run()
    defer {
      host.terminate()
      host.waitUntilExit()
    }
    let deadline = ContinuousClock.now + .seconds(20)
    repeat {
      // The host's socket appears when it serves; /proc offers no event for that.
      try await Task.sleep(for: .milliseconds(20))
      check = await doctor.agentHost()
    } while check?.outcome != .pass && ContinuousClock.now < deadline
    #expect(check?.outcome == .pass, "\(String(describing: check))")
    #expect(check?.detail.contains("0 agents running") == true, "\(String(describing: check))")
  }

  @Test func aBareNodeFailsWithReasons() async throws {
    let scratch = try Scratch()
    defer { scratch.remove() }
    var doctor = Doctor(config: config(scratch, binary: "/nonexistent/vaccel-rpc-agent"))
    doctor.k3sDataDir = scratch.sub("no-k3s")
    let checks = await doctor.run()
    let byName = Dictionary(checks.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    #expect(byName["kubelet device-plugins folder"]?.outcome == .fail)
    #expect(byName["kubelet registration socket"]?.detail.contains("no such socket") == true)
    #expect(byName["pod-resources socket"]?.outcome == .fail)
    #expect(byName["agent for vaccel.org/accel"]?.detail == "agent binary '/nonexistent/vaccel-rpc-agent' does not exist")
    #expect(byName["runDir"]?.outcome == .pass)  // creatable
    #expect(Doctor.exitCode(checks) == 1)
    #expect(Doctor.render(checks).contains("failed"))
  }

  /// An agent that starts but serves no session fails the check with what went wrong, as does
  /// one that exits at once; neither is left running.
  /// The agent that exits is given 20 s, which it never needs: a loaded machine may take longer
  /// than the refusing agent's 2 s just to start it, and that case must still fail by its exit.
  @Test(arguments: [
    ("STANDIN_REFUSE_SESSIONS", "1", "served no session within", 2),
    ("VACCEL_PLUGINS", "libvaccel-missing.so", "exited with code 2 before it served a session", 20),
  ])
  func anAgentThatDoesNotServeFailsTheRunCheck(_ key: String, _ value: String, _ expected: String, _ seconds: Int) async throws {
    let scratch = try Scratch()
    defer { scratch.remove() }
    var config = config(scratch, binary: Repository.built("vaccel-standin-agent"))
    config.resources[0].agent.env[key] = value
    config.resources[0].agent.readyTimeout = .seconds(seconds)
    let checks = await Doctor(config: config).agentChecks(config.resources[0])
    let runs = try #require(checks.first { $0.name == "agent for vaccel.org/accel: runs" })
    #expect(runs.outcome == .fail && runs.detail.contains(expected), "\(runs.detail)")
    #expect(ProcessInfoReader.processes(withArgumentWhere: { $0.hasPrefix("unix:///tmp/vaccel-trial.") }).isEmpty)
  }

  /// Both k3s forms: a template that extends k3s's base, and (k3s since pull request 13680) a
  /// drop-in folder the generated config imports; either way the handlers the RuntimeClasses
  /// name must be in one of the files.
  @Test func k3sContainerdConfigIsFoundAndChecked() throws {
    let scratch = try Scratch()
    defer { scratch.remove() }
    let containerd = scratch.sub("k3s/agent/etc/containerd")
    try FileManager.default.createDirectory(atPath: containerd, withIntermediateDirectories: true)
    var config = config(scratch, binary: "/nonexistent")
    // RuntimeClasses kata-qemu-vaccel and kata-fc-vaccel: handlers kata-qemu and kata-fc-vaccel.
    config.resources = [ResourceConfig(name: "vaccel.org/accel-vm", transport: .vsock, agent: config.agent)]
    var doctor = Doctor(config: config)
    doctor.k3sDataDir = scratch.sub("k3s")
    _ = try scratch.write("k3s/agent/etc/containerd/config.toml", "version = 3\n")
    var checks = doctor.k3s()
    #expect(checks.map(\.outcome) == [.pass, .warn])
    #expect(checks[1].detail.contains("no drop-in import and no template") && checks[1].detail.contains("not configured: kata-qemu"), "\(checks[1].detail)")

    // Older k3s: the template.
    _ = try scratch.write(
      "k3s/agent/etc/containerd/config-v3.toml.tmpl",
      "{{ template \"base\" . }}\n" + ContainerdConfig.snippet(handlers: ["kata-qemu", "kata-fc-vaccel"], k3s: true).split(separator: "{{ template \"base\" . }}").last!)
    checks = doctor.k3s()
    #expect(checks[1].outcome == .pass, "\(checks[1].detail)")
    #expect(checks[1].detail.contains("containerd 2.x template"))

    // k3s with the import: the drop-in folder is what counts, and what vaccelctl writes for it.
    try FileManager.default.removeItem(atPath: containerd + "/config-v3.toml.tmpl")
    _ = try scratch.write(
      "k3s/agent/etc/containerd/config.toml", "version = 3\nimports = [\"\(containerd)/config-v3.toml.d/*.toml\"]\n")
    checks = doctor.k3s()
    #expect(checks[1].outcome == .warn && checks[1].detail.contains("imports \(containerd)/config-v3.toml.d/*.toml (0 files)"), "\(checks[1].detail)")
    let form = ContainerdConfig.k3sForm(generated: try String(contentsOfFile: containerd + "/config.toml", encoding: .utf8), configDir: containerd)
    #expect(form == .init(version: 3, dropInDir: containerd + "/config-v3.toml.d"))
    let dropIn = ContainerdConfig.k3sDropIn(handlers: ["kata-qemu", "kata-fc-vaccel"], form: form)
    #expect(dropIn.contains("version = 3\n") && !dropIn.contains("template"))
    try FileManager.default.createDirectory(atPath: containerd + "/config-v3.toml.d", withIntermediateDirectories: true)
    _ = try scratch.write("k3s/agent/etc/containerd/config-v3.toml.d/50-vaccel.toml", dropIn)
    checks = doctor.k3s()
    #expect(checks[1].outcome == .pass && checks[1].detail.contains("(1 file)"), "\(checks[1].detail)")
  }
}
