import CRIClient
import Foundation
public import VaccelConfig
import VaccelAgents
import VaccelManifests

/// Node checks, one line each. What the daemon needs from the node, checked the way the
/// daemon would use it, so a failing line says what to fix.
public struct Doctor: Sendable {
  public enum Outcome: String, Sendable {
    case pass = "PASS"
    case fail = "FAIL"
    case warn = "WARN"
    case skip = "SKIP"
  }

  public struct Check: Sendable {
    public var name: String
    public var outcome: Outcome
    public var detail: String
  }

  public static let k3sDataDir = "/var/lib/rancher/k3s"
  public static let k3sContainerdSocket = "/run/k3s/containerd/containerd.sock"

  public var config: DaemonConfig
  /// Where agent binaries are looked up, as the daemon does.
  public var searchPath: String?
  /// Overridable for tests; the real paths otherwise.
  public var k3sDataDir = Doctor.k3sDataDir
  public var vsockDevice = "/dev/vsock"

  public init(config: DaemonConfig, searchPath: String? = ProcessInfo.processInfo.environment["PATH"]) {
    self.config = config
    self.searchPath = searchPath
  }

  public func run() async -> [Check] {
    var checks: [Check] = []
    let kubelet = config.kubelet
    checks.append(folder("kubelet device-plugins folder", kubelet.devicePluginDir))
    checks.append(socket("kubelet registration socket", kubelet.registrationSocket, hint: "is the kubelet running on this node?"))
    checks.append(socket("pod-resources socket", kubelet.podResourcesSocket, hint: "the kubelet serves it at startup"))
    checks.append(writable("runDir", config.runDir))
    checks.append(writable("stateDir", config.stateDir))
    if !config.agentHostSocket.isEmpty {
      checks.append(await agentHost())
    }
    for resource in config.resources {
      checks += await agentChecks(resource)
    }
    if config.resources.contains(where: { $0.transport == .vsock }) {
      checks.append(vsock())
      checks += vsockIsolation()
    }
    if config.usesSandboxes {
      checks.append(await containerRuntime())
      checks.append(sandboxFolders())
    }
    checks += k3s()
    if !config.statusSocket.isEmpty {
      let problem = SocketProbe.problem(connecting: config.statusSocket)
      checks.append(Check(
        name: "daemon status socket", outcome: problem == nil ? .pass : .warn,
        detail: problem.map { "\(config.statusSocket): \($0) (fine before the daemon is deployed)" } ?? config.statusSocket))
    }
    return checks
  }

  /// Exit code: 1 when any check failed.
  public static func exitCode(_ checks: [Check]) -> Int32 {
    checks.contains { $0.outcome == .fail } ? 1 : 0
  }

  public static func render(_ checks: [Check]) -> String {
    let width = checks.map(\.name.count).max() ?? 0
    var out = ""
    for check in checks {
      out += "\(check.outcome.rawValue)  \(check.name.padding(toLength: width, withPad: " ", startingAt: 0))  \(check.detail)\n"
    }
    let failed = checks.filter { $0.outcome == .fail }.count
    let warned = checks.filter { $0.outcome == .warn }.count
    let warnings = warned == 1 ? "1 warning" : "\(warned) warnings"
    out += failed == 0
      ? "\(checks.count) checks: all passed\(warned > 0 ? " (\(warnings))" : "")\n"
      : "\(checks.count) checks: \(failed) failed\(warned > 0 ? ", \(warnings)" : "")\n"
    return out
  }

  func folder(_ name: String, _ path: String) -> Check {
    var info = stat()
    guard stat(path, &info) == 0 else { return Check(name: name, outcome: .fail, detail: "\(path): \(String(cString: strerror(errno)))") }
    guard info.st_mode & S_IFMT == S_IFDIR else { return Check(name: name, outcome: .fail, detail: "\(path) is not a folder") }
    return Check(name: name, outcome: .pass, detail: path)
  }

  func socket(_ name: String, _ path: String, hint: String) -> Check {
    if let problem = SocketProbe.problem(connecting: path) {
      return Check(name: name, outcome: .fail, detail: "\(path): \(problem); \(hint)")
    }
    return Check(name: name, outcome: .pass, detail: "\(path) accepts connections")
  }

  /// The folder, or the nearest existing parent the daemon would create it in, is writable.
  func writable(_ name: String, _ path: String) -> Check {
    var probe = path
    while !FileManager.default.fileExists(atPath: probe), probe != "/" {
      probe = (probe as NSString).deletingLastPathComponent
    }
    guard access(probe, W_OK) == 0 else {
      return Check(name: name, outcome: .fail, detail: "\(probe) is not writable (\(String(cString: strerror(errno))))")
    }
    return Check(name: name, outcome: .pass, detail: probe == path ? "\(path) is writable" : "\(path) can be created in \(probe)")
  }

  func agentChecks(_ resource: ResourceConfig) async -> [Check] {
    let name = "agent for \(resource.name)"
    guard resource.agents == .managed else {
      return [Check(name: name, outcome: .skip, detail: "agents: runtime (the sandbox runtime starts them)")]
    }
    let install: AgentInstall
    switch AgentInstall.check(resource.agent, path: searchPath) {
    case .failure(let error): return [Check(name: name, outcome: .fail, detail: "\(error)")]
    case .success(let found): install = found
    }
    let plugins = resource.agent.plugins.isEmpty ? "no plugins configured" : "plugins \(resource.agent.plugins.joined(separator: ", ")) found"
    return [
      Check(name: "\(name): install", outcome: .pass, detail: "\(install.executable); \(plugins)"),
      await runs(install, agent: resource.agent, name: "\(name): runs"),
    ]
  }

  /// The agent started as the daemon starts it, on a temporary socket with the configured
  /// plugins, serving one session round trip, then stopped (it has no `--version`).
  func runs(_ install: AgentInstall, agent: AgentConfig, name: String) async -> Check {
    do {
      let trial = try await AgentTrial.run(install, agent: agent, timeout: agent.readyTimeout)
      return Check(
        name: name, outcome: .pass,
        detail: "started on a temporary socket, a session round trip after \(String(format: "%.0f", trial.ready / .milliseconds(1))) ms, stopped")
    } catch {
      return Check(name: name, outcome: .fail, detail: "\(error)")
    }
  }

  func vsock() -> Check {
    let fd = Glibc.socket(AF_VSOCK, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else {
      return Check(name: "vsock", outcome: .fail, detail: "AF_VSOCK sockets unavailable (\(String(cString: strerror(errno)))): load vhost_vsock (modprobe vhost_vsock)")
    }
    close(fd)
    let device = FileManager.default.fileExists(atPath: vsockDevice) ? "\(vsockDevice) present" : "\(vsockDevice) absent (the host side needs vhost_vsock for QEMU guests)"
    return Check(name: "vsock", outcome: .pass, detail: "AF_VSOCK sockets work; \(device)")
  }

  /// transport vsock has no isolation between pods, and says so wherever an operator looks.
  func vsockIsolation() -> [Check] {
    config.resources.filter { $0.transport == .vsock && $0.agents == .managed }.map { resource in
      Check(
        name: "vsock isolation", outcome: .warn,
        detail: "\(resource.name): any VM on this node can connect to any pod's port (\(resource.basePort)…\(resource.basePort + resource.slots - 1)); "
          + "pods are not isolated from each other. Use transport hybrid-vsock (Kata with Firecracker, Cloud Hypervisor, Dragonball) where you can")
    }
  }

  /// hybrid-vsock: the container runtime answers ListPodSandbox on its CRI socket.
  func containerRuntime() async -> Check {
    let locator = CRISandboxLocator(criSockets: config.sandboxes.criSockets, vmSockets: config.sandboxes.vmSockets)
    do {
      let sandboxes = try await locator.readySandboxes(namespace: nil, pod: nil)
      return Check(
        name: "container runtime (CRI)", outcome: .pass,
        detail: "\(locator.runtimeDescription) lists \(sandboxes.count) ready pod sandbox\(sandboxes.count == 1 ? "" : "es")")
    } catch {
      return Check(name: "container runtime (CRI)", outcome: .fail, detail: "\(error)")
    }
  }

  /// hybrid-vsock: the folders where Kata keeps its VMs' sockets (made by Kata on its first VM).
  func sandboxFolders() -> Check {
    let roots = config.sandboxes.vmSocketRoots
    let present = roots.filter { FileManager.default.fileExists(atPath: $0) }
    guard !present.isEmpty else {
      return Check(
        name: "VM sandbox folders", outcome: .warn,
        detail: "none of \(roots.joined(separator: ", ")) exists yet (fine before the first Kata VM on this node; otherwise check sandboxes.vmSockets)")
    }
    return Check(name: "VM sandbox folders", outcome: .pass, detail: present.joined(separator: ", "))
  }

  func k3s() -> [Check] {
    guard FileManager.default.fileExists(atPath: k3sDataDir) else {
      return [Check(name: "k3s", outcome: .skip, detail: "not a k3s node (\(k3sDataDir) absent)")]
    }
    var checks = [Check(name: "k3s", outcome: .pass, detail: "k3s node (\(k3sDataDir))")]
    let folder = k3sDataDir + "/agent/etc/containerd"
    let fm = FileManager.default
    let read = { (path: String) in fm.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) } }
    let v3 = folder + "/config-v3.toml.tmpl", v2 = folder + "/config.toml.tmpl", generated = folder + "/config.toml"
    guard let generatedText = read(generated) else {
      checks.append(Check(name: "k3s containerd config", outcome: .warn, detail: "no \(generated) yet (k3s writes it at start)"))
      return checks
    }
    // The form this k3s uses: a drop-in folder its config imports (k3s pull request 13680,
    // February 2026), else a template that extends k3s's base.
    let form = ContainerdConfig.k3sForm(generated: generatedText, configDir: folder)
    var texts = [generatedText]
    var detail: String
    if let dropIn = form.dropInDir {
      let files = ((try? fm.contentsOfDirectory(atPath: dropIn)) ?? []).filter { $0.hasSuffix(".toml") }.sorted()
      texts += files.compactMap { read(dropIn + "/" + $0) }
      detail = "containerd \(form.version == 3 ? "2.x" : "1.7") imports \(dropIn)/*.toml (\(files.count) file\(files.count == 1 ? "" : "s")): "
        + "add handlers there (`vaccelctl manifests containerd --k3s`)"
    } else if let template = [v3, v2].first(where: { fm.fileExists(atPath: $0) }) {
      texts += [read(template) ?? ""]
      detail = "\(template == v3 ? "containerd 2.x" : "containerd 1.7") template \(template) (this k3s imports no drop-in folder)"
    } else {
      detail = "k3s's generated \(generated), no drop-in import and no template: add one with `vaccelctl manifests containerd --k3s`"
    }
    // The handlers this node's RuntimeClasses need, configured in any of those files.
    let handlers = ManifestRenderer.defaultRuntimeClasses(for: config).map(\.handler)
    let configured = ContainerdConfig.configuredHandlers(handlers, in: texts)
    let missing = handlers.filter { !configured.contains($0) }
    if !missing.isEmpty {
      detail += "; not configured: \(missing.joined(separator: ", ")) (pods of those RuntimeClasses will not start)"
    }
    checks.append(Check(name: "k3s containerd config", outcome: missing.isEmpty ? .pass : .warn, detail: detail))
    return checks
  }
}
