import DevicePlugin
import Foundation
import Glibc
import KubeletAPI
import Testing
import VaccelAgentAPI
import VaccelAgents
import VaccelRPC

/// The image the manifests deploy, built by scripts/build-image, run as the DaemonSet runs it:
/// by a real OCI runtime (Debian's runc), with the rendered DaemonSet's args, env,
/// securityContext (read-only root, every capability dropped, uid 0, no privilege escalation),
/// the RuntimeDefault seccomp profile, and every volume it declares, its hostPaths under a folder
/// standing for the host's `/`. The host side is the kubelet emulation: the daemon in the
/// container registers through the mounted device-plugins folder, the pod's agent starts from the
/// mounted vAccel install (the stand-in, built as a self-contained binary like the real one), and
/// `vaccelctl` answers through an exec in the container. A missing library, a write to a
/// read-only path, or a syscall the profile refuses fails here.
@Suite("The shipped image, run as the DaemonSet runs it", .serialized)
struct ImageTests {
  static let environment = ProcessInfo.processInfo.environment
  static var archive: String { environment["VACCEL_IMAGE"] ?? Repository.root + "/.build-image/vaccel-device-plugin.oci.tar" }
  /// A self-contained stand-in agent (the Swift runtime linked in): the host's install has no Swift.
  static var hostAgent: String { environment["VACCEL_IMAGE_AGENT"] ?? Repository.root + "/.build-image/release/vaccel-standin-agent" }
  static let seccompProfile = "/usr/share/containers/seccomp.json"
  /// CI sets this: a machine that cannot build or run the image fails instead of skipping.
  static var required: Bool { environment["VACCEL_REQUIRE_IMAGE"] == "1" }

  static var missing: [String] {
    var missing: [String] = []
    for file in [archive, hostAgent, seccompProfile] where !FileManager.default.fileExists(atPath: file) { missing.append(file) }
    for tool in ["umoci", "runc", "nsenter", "gcc"] where Repository.which(tool) == nil { missing.append(tool) }
    if getuid() != 0 { missing.append("root (an OCI runtime makes namespaces and mounts)") }
    return missing
  }

  static let resource = "vaccel.org/accel"

  @Test(
    "the image registers, allocates, starts the pod's agent from the host's install, answers vaccelctl and stops on SIGTERM",
    .enabled(if: ImageTests.missing.isEmpty || ImageTests.required, "needs scripts/build-image and scripts/install-image-deps"))
  func theImageRunsAsTheDaemonSetRunsIt() async throws {
    let runtime = "runc"
    try #require(Self.missing.isEmpty, "missing to run the image: \(Self.missing.joined(separator: ", ")); run scripts/build-image")
    let directory = try TestDirectory()
    let host = directory.sub("host")
    let container = try await ImageContainer.prepare(runtime: runtime, in: directory, hostRoot: host)
    let agentHost = try await ImageContainer.prepare(runtime: runtime, in: directory, hostRoot: host, daemonSet: "vaccel-agent-host")

    // The host: a kubelet with its device-plugin and pod-resources sockets, a vAccel install.
    let kubelet = FakeKubelet(directory: host + "/var/lib/kubelet/device-plugins")
    try await kubelet.start()
    let podResources = FakePodResourcesServer(socketPath: host + "/var/lib/kubelet/pod-resources/kubelet.sock")
    try await podResources.start()
    try await Self.installVaccel(at: host + "/opt/vaccel")

    // The agents' own pod first, as its DaemonSet starts it beside the daemon's.
    let hostContainer = try agentHost.run()
    let daemon = try container.run()
    do {
      // Every resource the ConfigMap lists registered and streaming; then ready by the probe
      // the kubelet uses.
      let names = try container.pod.resourceNames()
      let registered = try await daemon.unlessExited("registration of \(names)") {
        try await kubelet.wait(for: "registration of \(names) from the container", timeout: .seconds(90)) { state in
          names.allSatisfy { state.plugins[$0]?.devices.isEmpty == false } && state.healthy(Self.resource) > 0
        }
      }
      #expect(registered.plugins[Self.resource]?.devices.count == 8, "the ConfigMap's vaccel.org/accel has 8 slots")
      // The readinessProbe, from the pod's network namespace, periodic as the kubelet's is (the
      // daemon may learn that Register returned a moment after the kubelet has its devices).
      var readyz = (status: Int32(-1), output: "", error: "")
      for _ in 0..<20 {
        readyz = try await container.inNetworkNamespace(
          ["python3", "-c", "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:9464/readyz', timeout=5).status)"])
        if readyz.output == "200" { break }
        try await Task.sleep(for: .seconds(1))  // the probe's period
      }
      #expect(readyz.output == "200", "readinessProbe /readyz: \(readyz)")

      // The daemon runs confined as the DaemonSet says: no capability, no privilege
      // escalation, a seccomp filter, a read-only root.
      let confinement = try await container.exec(["/bin/cat", "/proc/1/status"])
      let fields = Dictionary(confinement.output.split(separator: "\n").compactMap { line -> (String, String)? in
        let parts = line.split(separator: ":", maxSplits: 1)
        return parts.count == 2 ? (String(parts[0]), parts[1].trimmingCharacters(in: .whitespaces)) : nil
      }, uniquingKeysWith: { first, _ in first })
      #expect(fields["CapEff"] == "0000000000000000" && fields["CapBnd"] == "0000000000000000", "\(confinement.output)")
      #expect(fields["NoNewPrivs"] == "1" && fields["Seccomp"] == "2" && fields["Uid"]?.hasPrefix("0\t") == true)
      let write = try await container.exec(["/bin/touch", "/usr/local/bin/x"])
      #expect(write.status != 0 && write.error.contains("Read-only file system"), "\(write)")

      // A pod is admitted: Allocate, then PreStartContainer, which waits for its agent.
      let reply = try await kubelet.admit(Self.resource, [["accel-0"]])
      let response = try #require(reply.containerResponses.first)
      let address = try #require(response.envs["VACCEL_RPC_ADDRESS"])
      let mount = try #require(response.mounts.first)
      #expect(address == "unix://\(mount.containerPath)/vaccel.sock")
      #expect(mount.hostPath.hasPrefix("/var/run/vaccel/"), "the slot folder at the host's path: \(mount.hostPath)")
      podResources.set(Self.resource, holders: ["accel-0": Holder(namespace: "ml", pod: "classify", container: "app")])

      // The pod's own agent answers on the host side of the mount: the host's install ran in the image.
      let socket = host + mount.hostPath + "/vaccel.sock"
      let session = try await TTRPCClient.withConnection(to: .unix(path: socket), timeout: .seconds(10)) { connection in
        try await connection.call(
          service: VaccelAgentService.sync, method: "CreateSession", request: Vaccel_Session_CreateRequest(),
          as: Vaccel_Session_CreateResponse.self
        ).sessionID
      }
      #expect(session > 0)
      let agents = ProcessInfoReader.processes(withArgument: "unix://\(mount.hostPath)/vaccel.sock")
      #expect(agents.count == 1, "one agent for the pod: \(agents)")
      if let agent = agents.first {
        let commandLine = (try? String(contentsOfFile: "/proc/\(agent)/cmdline", encoding: .utf8)) ?? ""
        let program = commandLine.split(separator: "\0").first.map(String.init)
        #expect(program == "/opt/vaccel/bin/vaccel-rpc-agent", "started from the mounted install: \(commandLine)")
      }

      // vaccelctl through an exec in the container, as `kubectl exec` runs it.
      let status = try await container.exec(["/usr/local/bin/vaccelctl", "status", "-o", "json"])
      #expect(status.status == 0, "vaccelctl status: \(status.error)")
      let document = try JSONSerialization.jsonObject(with: Data(status.output.utf8)) as? [String: Any]
      let resources = document?["resources"] as? [[String: Any]] ?? []
      let accel = resources.first { $0["name"] as? String == Self.resource }
      let slot = (accel?["slots"] as? [[String: Any]])?.first { $0["id"] as? String == "accel-0" }
      #expect(slot?["allocated"] as? Bool == true, "vaccelctl shows the allocation: \(status.output.prefix(2000))")
      #expect((slot?["agent"] as? [String: Any])?["phase"] as? String == "ready")
      let table = try await container.exec(["/usr/local/bin/vaccelctl", "status"])
      #expect(table.status == 0 && table.output.contains("accel-0"), "vaccelctl status: \(table)")

      // SIGTERM, as a rollout stops the daemon's pod: a clean exit, and the container is gone
      // (runc deletes it), but the pod's agent is the agent host's: it still runs, and the
      // session made before still answers.
      try await container.signal("TERM")
      let exit = await daemon.wait(timeout: .seconds(40))
      #expect(exit == 0, "the daemon's exit on SIGTERM; its log:\n\(daemon.standardError.suffix(3000))")
      await container.remove()
      #expect(ProcessInfoReader.processes(withArgument: "unix://\(mount.hostPath)/vaccel.sock") == agents, "the same agent")
      let later = try await TTRPCClient.withConnection(to: .unix(path: socket), timeout: .seconds(10)) { connection in
        try await connection.call(
          service: VaccelAgentService.sync, method: "ImageClassification",
          request: Vaccel_Image_Request.with { $0.sessionID = session }, as: Vaccel_Image_Response.self)
      }
      #expect(!later.tags.isEmpty, "the session made before the daemon's exit still works")
      #expect(FileManager.default.fileExists(atPath: host + "/var/lib/vaccel-device-plugin/checkpoint.json"), "the checkpoint is on the host")

      // The agent host's SIGTERM (the product uninstalled): every agent stops with it.
      try await agentHost.signal("TERM")
      #expect(await hostContainer.wait(timeout: .seconds(40)) == 0, "the agent host's exit: \(hostContainer.standardError.suffix(3000))")
      #expect(ProcessInfoReader.processes(withArgument: "unix://\(mount.hostPath)/vaccel.sock").isEmpty)
      // What a read-only root or a dropped capability breaks shows as an error in the log.
      let problems = daemon.standardError.split(separator: "\n").filter {
        $0.contains("Read-only file system") || $0.contains("Permission denied") || $0.contains("Operation not permitted")
      }
      #expect(problems.isEmpty, "the daemon hit the container's limits: \(problems)")
    } catch {
      await container.remove()
      await agentHost.remove()
      await kubelet.stop()
      await podResources.stop()
      Issue.record("the daemon's log:\n\(daemon.standardError.suffix(4000))\nthe agent host's:\n\(hostContainer.standardError.suffix(2000))")
      throw error
    }
    await container.remove()
    await agentHost.remove()
    await kubelet.stop()
    await podResources.stop()
  }

  /// The image's two binaries need no shared library (static-pie, scripts/release-flags): in
  /// its root with every shared object and the loader deleted, both still run, and the root's
  /// own `/usr/bin/true`, the control, no longer does.
  @Test(
    "the image's binaries run in its root with every shared library deleted",
    .enabled(if: ImageTests.missing.isEmpty || ImageTests.required, "needs scripts/build-image and scripts/install-image-deps"))
  func theImageRunsWithNoSharedLibrary() async throws {
    try #require(Self.missing.isEmpty, "missing to run the image: \(Self.missing.joined(separator: ", ")); run scripts/build-image")
    let directory = try TestDirectory()
    let container = try await ImageContainer.prepare(runtime: "runc", in: directory, hostRoot: directory.sub("host"))
    let root = container.bundle + "/rootfs"
    let found = try await ChildProcess.run(
      "/usr/bin/env", ["find", root, "-xdev", "(", "-name", "*.so", "-o", "-name", "*.so.*", ")", "(", "-type", "f", "-o", "-type", "l", ")", "-print", "-delete"])
    try ImageContainer.check(found, "find -delete")
    let deleted = found.output.split(separator: "\n")
    #expect(deleted.contains { $0.hasSuffix("/libc.so.6") } && deleted.contains { $0.hasSuffix("/ld-linux-x86-64.so.2") }, "\(deleted)")
    // With /proc, as every container has it: the Swift runtime reads its own path there.
    let inRoot = ["unshare", "--mount", "--pid", "--fork", "--mount-proc=\(root)/proc", "chroot", root]
    let control = try await ChildProcess.run("/usr/bin/env", inRoot + ["/usr/bin/true"])
    #expect(control.status != 0, "/usr/bin/true ran without libc: the libraries were not gone")
    for binary in ["/usr/local/bin/vaccel-device-plugin", "/usr/local/bin/vaccelctl"] {
      let version = try await ChildProcess.run("/usr/bin/env", inRoot + [binary, "--version"])
      #expect(version.status == 0 && !version.output.isEmpty, "\(binary) --version: \(version.status) \(version.output) \(version.error)")
    }
  }

  /// The image's daemon (the unstripped build it was stripped from) links neither Foundation
  /// nor ICU, nor the TLS stack of grpc-swift's Posix transport (NIOSSL, X509, BoringSSL): their
  /// symbols would be there if any module pulled them in (issue 14; the daemon's gRPC clients
  /// are GRPCUnixClient's). vaccelctl, which keeps Foundation and the Posix transport, is the
  /// control.
  @Test(
    "the shipped daemon carries no Foundation, no ICU and no TLS stack",
    .enabled(if: ImageTests.missing.isEmpty || ImageTests.required, "needs scripts/build-image and scripts/install-image-deps"))
  func theShippedDaemonCarriesNoICU() async throws {
    let binary = Self.environment["VACCEL_IMAGE_DAEMON"] ?? Repository.root + "/.build-image/release/vaccel-device-plugin"
    func symbols(_ binary: String) async throws -> (icu: Int, foundation: Int, tls: Int, all: Int) {
      let result = try await ChildProcess.run("/usr/bin/env", ["nm", binary])
      try #require(result.status == 0, "nm \(binary): \(result.error)")
      let lines = result.output.split(separator: "\n")
      return (
        lines.filter { $0.contains("ucol_") || $0.contains("ubrk_") || $0.contains("icu_") }.count,
        lines.filter { $0.contains("$s10Foundation") || $0.contains("FoundationInternationalization") }.count,
        lines.filter {
          $0.contains("BoringSSL_") || $0.contains("$s6NIOSSL") || $0.contains("$s4X509") || $0.contains("$s6Crypto")
        }.count,
        lines.count)
    }
    let daemon = try await symbols(binary)
    #expect(daemon.all > 10_000, "nm read the symbols")
    #expect(daemon.icu == 0 && daemon.foundation == 0, "ICU and Foundation symbols in the daemon: \(daemon)")
    #expect(daemon.tls == 0, "TLS symbols in the daemon: \(daemon)")
    // The control: vaccelctl, built beside it, keeps Foundation, and the same count sees it.
    let vaccelctl = try await symbols(URL(fileURLWithPath: binary).deletingLastPathComponent().path + "/vaccelctl")
    #expect(vaccelctl.icu > 1_000 && vaccelctl.foundation > 1_000 && vaccelctl.tls > 1_000, "vaccelctl: \(vaccelctl)")
    let libraries = try await ChildProcess.run("/usr/bin/env", ["ldd", binary])
    #expect(!libraries.output.contains("Foundation") && !libraries.output.contains("icu"), "\(libraries.output)")
  }

  /// Both binaries are static-pie (scripts/release-flags): no loader, no shared library, so the
  /// image needs none, and still position independent (randomised).
  @Test(
    "the shipped binaries load no shared library and stay position independent",
    .enabled(if: ImageTests.missing.isEmpty || ImageTests.required, "needs scripts/build-image and scripts/install-image-deps"))
  func theShippedBinariesAreStaticPIE() async throws {
    let daemon = Self.environment["VACCEL_IMAGE_DAEMON"] ?? Repository.root + "/.build-image/release/vaccel-device-plugin"
    for binary in [daemon, URL(fileURLWithPath: daemon).deletingLastPathComponent().path + "/vaccelctl"] {
      let headers = try await ChildProcess.run("/usr/bin/env", ["readelf", "--file-header", "--program-headers", "--dynamic", "--wide", binary])
      try #require(headers.status == 0, "readelf \(binary): \(headers.error)")
      #expect(headers.output.contains("DYN (Position-Independent Executable file)"), "\(binary) is not PIE")
      #expect(!headers.output.contains("INTERP"), "\(binary) asks for a loader")
      #expect(!headers.output.contains("(NEEDED)"), "\(binary) needs shared libraries")
      #expect(!headers.output.contains("RUNPATH") && !headers.output.contains("RPATH"), "\(binary) has a run path (glibc's static-pie start asserts on it)")
    }
    // And they run: glibc's static-pie start relocates them before anything else.
    let version = try await ChildProcess.run(daemon, ["--version"])
    #expect(version.status == 0 && !version.output.isEmpty, "\(daemon) --version: \(version.status) \(version.error)")
  }

  /// A host vAccel install as the DaemonSet mounts it: `bin/vaccel-rpc-agent` (the stand-in)
  /// and the plugin the ConfigMap names, a real shared object.
  static func installVaccel(at root: String) async throws {
    try FileManager.default.createDirectory(atPath: root + "/bin", withIntermediateDirectories: true)
    try FileManager.default.createDirectory(atPath: root + "/lib", withIntermediateDirectories: true)
    try FileManager.default.copyItem(atPath: hostAgent, toPath: root + "/bin/vaccel-rpc-agent")
    let plugin = try await ChildProcess.run("/usr/bin/env", ["gcc", "-shared", "-x", "c", "/dev/null", "-o", root + "/lib/libvaccel-noop.so"])
    guard plugin.status == 0 else { throw PodBundle.Failure(description: "gcc: \(plugin.error)") }
  }
}

/// One container of the image under an OCI runtime, its state in the test's folder.
struct ImageContainer {
  let pod: PodBundle
  let runtime: String
  let id: String
  let bundle: String
  let state: String

  /// Unpacks the archive with umoci and makes the bundle the DaemonSet's pod.
  static func prepare(
    runtime: String, in directory: TestDirectory, hostRoot: String, daemonSet: String = "vaccel-device-plugin"
  ) async throws -> ImageContainer {
    // One image unpacked per container, each in folders of its own.
    let place = { (name: String) in directory.sub("\(daemonSet)-\(name)") }
    let layout = place("layout")
    try FileManager.default.createDirectory(atPath: layout, withIntermediateDirectories: true)
    try await Self.check(ChildProcess.run("/usr/bin/env", ["tar", "-xf", ImageTests.archive, "-C", layout]), "tar")
    let index = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: layout + "/index.json"))) as? [String: Any]
    let annotations = (index?["manifests"] as? [[String: Any]])?.first?["annotations"] as? [String: String] ?? [:]
    let tag = try #require(annotations["org.opencontainers.image.ref.name"], "the archive's tag")
    #expect(annotations["io.containerd.image.name"]?.hasSuffix(":" + tag) == true, "containerd's import names it: \(annotations)")
    let bundle = place("bundle")
    try await Self.check(ChildProcess.run("/usr/bin/env", ["umoci", "unpack", "--image", "\(layout):\(tag)", bundle]), "umoci unpack")
    // The kubelet's own folders exist before any plugin starts (hostPath type: Directory).
    for folder in ["/var/lib/kubelet/device-plugins", "/var/lib/kubelet/pod-resources"] {
      try FileManager.default.createDirectory(atPath: hostRoot + folder, withIntermediateDirectories: true)
    }
    let seccomp = try PodBundle.runtimeDefaultSeccomp(ImageTests.seccompProfile, capabilities: [])
    let pod = PodBundle(
      manifest: Repository.root + "/Manifests/vaccel-device-plugin.yaml", hostRoot: hostRoot, scratch: place("pod"),
      daemonSet: daemonSet)
    try pod.apply(to: bundle, seccomp: seccomp, env: ["spec.nodeName": "image-test-node", "status.hostIP": "127.0.0.1"])
    return ImageContainer(
      pod: pod, runtime: runtime, id: "vdp-image-\(getpid())-\(runtime)-\(daemonSet)", bundle: bundle,
      state: place("\(runtime)-state"))
  }

  static func check(_ result: (status: Int32, output: String, error: String), _ what: String) throws {
    guard result.status == 0 else { throw PodBundle.Failure(description: "\(what) exited \(result.status): \(result.error)") }
  }

  private var base: [String] { [runtime, "--root", state] }

  /// `<runtime> run` in the foreground: the daemon's stdout and stderr are the child's.
  func run() throws -> ChildProcess {
    try ChildProcess("/usr/bin/env", base + ["run", "--bundle", bundle, id])
  }

  func exec(_ arguments: [String]) async throws -> (status: Int32, output: String, error: String) {
    try await ChildProcess.run("/usr/bin/env", base + ["exec", id] + arguments)
  }

  func signal(_ name: String) async throws {
    try Self.check(await ChildProcess.run("/usr/bin/env", base + ["kill", id, name]), "\(runtime) kill")
  }

  /// Runs a host command in the container's network namespace (where the kubelet's HTTP probes land).
  func inNetworkNamespace(_ arguments: [String]) async throws -> (status: Int32, output: String, error: String) {
    let state = try await ChildProcess.run("/usr/bin/env", base + ["state", id])
    try Self.check(state, "\(runtime) state")
    let pid = try #require((try JSONSerialization.jsonObject(with: Data(state.output.utf8)) as? [String: Any])?["pid"] as? Int)
    return try await ChildProcess.run("/usr/bin/env", ["nsenter", "--target", "\(pid)", "--net"] + arguments)
  }

  /// Gone whatever its state: killed if it still runs, then deleted.
  func remove() async {
    _ = try? await ChildProcess.run("/usr/bin/env", base + ["delete", "--force", id])
  }
}

extension ChildProcess {
  /// `body`'s result, unless the child exits first: then an error with its status and stderr's end.
  func unlessExited<T: Sendable>(_ what: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
      group.addTask { try await body() }
      group.addTask {
        let status = try await self.exited()
        throw PodBundle.Failure(description: "exited with status \(status) before \(what):\n\(self.standardError.suffix(3000))")
      }
      defer { group.cancelAll() }
      return try await group.next()!!
    }
  }
}
