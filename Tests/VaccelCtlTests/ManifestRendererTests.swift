import Foundation
import Testing
import VaccelConfig
@testable import VaccelManifests
import Yams

@Suite("Manifests from typed models")
struct ManifestRendererTests {
  /// Every object of a rendered stream, parsed back.
  static func objects(_ yaml: String) throws -> [[String: Any]] {
    try Yams.load_all(yaml: yaml).compactMap { $0 as? [String: Any] }
  }

  /// The DaemonSet's one container.
  static func container(_ objects: [[String: Any]]) -> [String: Any]? {
    let daemonSet = only("DaemonSet", objects).first
    let template = (daemonSet?["spec"] as? [String: Any])?["template"] as? [String: Any]
    return ((template?["spec"] as? [String: Any])?["containers"] as? [[String: Any]])?.first
  }

  static func only(_ kind: String, _ objects: [[String: Any]]) -> [[String: Any]] {
    objects.filter { $0["kind"] as? String == kind }
  }

  @Test func manifestsFolderMatchesAFreshRender() throws {
    let cases: [(String, ManifestOptions)] = [
      ("vaccel-device-plugin.yaml", ManifestOptions()),
      ("vaccel-device-plugin-k3s.yaml", { var o = ManifestOptions(); o.k3s = true; return o }()),
      ("example-pod.yaml", { var o = ManifestOptions(); o.only = [.pod]; o.examples = .plain; return o }()),
      ("example-pods-kata.yaml", { var o = ManifestOptions(); o.only = [.pod]; o.examples = .vm; return o }()),
    ]
    for (file, options) in cases {
      let committed = try String(contentsOfFile: Repository.manifests + "/" + file, encoding: .utf8)
      // The header: "rendered by", and what the file needs.
      let body = committed.split(separator: "\n", omittingEmptySubsequences: false).drop { $0.hasPrefix("#") }.joined(separator: "\n")
      let fresh = try ManifestRenderer(options: options).render()
      #expect(String(body) == fresh, "Manifests/\(file) differs from a fresh render: run scripts/render-manifests")
    }
    let containerd = try String(contentsOfFile: Repository.manifests + "/k3s-containerd-config.toml.tmpl", encoding: .utf8)
    let renderer = try ManifestRenderer(options: ManifestOptions())
    #expect(String(containerd.drop { $0 != "\n" }.dropFirst())
      == ContainerdConfig.snippet(handlers: renderer.runtimeClasses.map(\.spec.handler), k3s: true))
    let dropIn = try String(contentsOfFile: Repository.manifests + "/k3s-containerd-dropin.toml", encoding: .utf8)
    let form = ContainerdConfig.K3sForm(version: 3, dropInDir: ContainerdConfig.k3sConfigDir + "/config-v3.toml.d")
    #expect(dropIn.split(separator: "\n", omittingEmptySubsequences: false).dropFirst(2).joined(separator: "\n")
      == ContainerdConfig.k3sDropIn(handlers: renderer.runtimeClasses.map(\.spec.handler), form: form))
  }

  @Test func renderingIsDeterministic() throws {
    let a = try ManifestRenderer(options: ManifestOptions()).render()
    let b = try ManifestRenderer(options: ManifestOptions()).render()
    #expect(a == b)
  }

  @Test func daemonSetIsWhatADevicePluginNeeds() throws {
    let objects = try Self.objects(try ManifestRenderer(options: ManifestOptions()).render())
    #expect(objects.map { $0["kind"] as? String } == ["Namespace", "ServiceAccount", "ConfigMap", "DaemonSet", "DaemonSet"] + Array(repeating: "RuntimeClass", count: 5))
    let daemonSet = try #require(Self.only("DaemonSet", objects).first)
    let spec = try #require(daemonSet["spec"] as? [String: Any])
    let update = try #require((spec["updateStrategy"] as? [String: Any])?["rollingUpdate"] as? [String: Any])
    #expect(update["maxSurge"] as? Int == 0)
    let pod = try #require((spec["template"] as? [String: Any])?["spec"] as? [String: Any])
    #expect(pod["priorityClassName"] as? String == "system-node-critical")
    #expect((pod["nodeSelector"] as? [String: String]) == ["vaccel.org/node": "true"])
    let container = try #require((pod["containers"] as? [[String: Any]])?.first)
    let security = try #require(container["securityContext"] as? [String: Any])
    #expect(security["readOnlyRootFilesystem"] as? Bool == true)
    #expect(security["allowPrivilegeEscalation"] as? Bool == false)
    #expect((security["capabilities"] as? [String: Any])?["drop"] as? [String] == ["ALL"])
    #expect((security["capabilities"] as? [String: Any])?["add"] == nil)
    #expect(((container["livenessProbe"] as? [String: Any])?["httpGet"] as? [String: Any])?["path"] as? String == "/healthz")
    #expect(((container["readinessProbe"] as? [String: Any])?["httpGet"] as? [String: Any])?["path"] as? String == "/readyz")
    #expect((container["resources"] as? [String: Any])?["requests"] != nil)

    // The host folders the config names, at the same path inside and out.
    let volumes = try #require(pod["volumes"] as? [[String: Any]])
    let mounts = try #require(container["volumeMounts"] as? [[String: Any]])
    let hostPaths = Dictionary(uniqueKeysWithValues: volumes.compactMap { volume -> (String, String)? in
      guard let host = volume["hostPath"] as? [String: Any], let path = host["path"] as? String else { return nil }
      return (volume["name"] as! String, path)
    })
    #expect(hostPaths["device-plugins"] == "/var/lib/kubelet/device-plugins")
    #expect(hostPaths["pod-resources"] == "/var/lib/kubelet/pod-resources")
    #expect(hostPaths["run"] == "/var/run/vaccel")
    #expect(hostPaths["state"] == "/var/lib/vaccel-device-plugin")
    #expect(hostPaths["vaccel-install-0"] == "/opt/vaccel")
    for (name, path) in hostPaths {
      #expect(mounts.contains { $0["name"] as? String == name && $0["mountPath"] as? String == path }, "\(name) not at \(path)")
    }
  }

  @Test func configMapCarriesAConfigTheDaemonAccepts() throws {
    let objects = try Self.objects(try ManifestRenderer(options: ManifestOptions()).render())
    let data = try #require(Self.only("ConfigMap", objects).first?["data"] as? [String: String])
    let config = try ConfigLoader.load(yaml: try #require(data["config.yaml"]), source: "ConfigMap")
    #expect(config.resources.map(\.name) == ["vaccel.org/accel", "vaccel.org/accel-hvsock", "vaccel.org/accel-vm", "vaccel.org/accel-fc"])
  }

  @Test func runtimeClassesPairWithTheResourceThatServesThem() throws {
    let renderer = try ManifestRenderer(options: ManifestOptions())
    let pairs = renderer.runtimeClasses.map { "\($0.spec.name)=\($0.spec.handler)@\($0.resource.name)" }
    #expect(pairs == [
      "vaccel-kata-fc=kata-fc@vaccel.org/accel-hvsock", "vaccel-kata-clh=kata-clh@vaccel.org/accel-hvsock",
      "vaccel-kata-dragonball=kata-dragonball@vaccel.org/accel-hvsock",
      "kata-qemu-vaccel=kata-qemu@vaccel.org/accel-vm", "kata-fc-vaccel=kata-fc-vaccel@vaccel.org/accel-fc",
    ])
    let classes = renderer.runtimeClassObjects()
    #expect(classes[0].metadata.annotations?["vaccel.org/agents"] == "vaccel-device-plugin")
    #expect(classes[3].overhead?.podFixed == ["memory": "160Mi", "cpu": "250m"])
    #expect(classes[3].scheduling?.nodeSelector?["katacontainers.io/kata-runtime"] == "true")
    #expect(classes[4].metadata.annotations?["vaccel.org/agents"] == "runtime")

    var options = ManifestOptions()
    options.only = [.pod]
    let pods = try Self.objects(try ManifestRenderer(options: options).render())
    let kata = try #require(pods.first { ($0["metadata"] as? [String: Any])?["name"] as? String == "vaccel-example-kata-qemu-vaccel" })
    let spec = try #require(kata["spec"] as? [String: Any])
    #expect(spec["runtimeClassName"] as? String == "kata-qemu-vaccel")
    let limits = ((spec["containers"] as? [[String: Any]])?.first?["resources"] as? [String: Any])?["limits"] as? [String: String]
    #expect(limits == ["vaccel.org/accel-vm": "1"])
  }

  /// hybrid-vsock: the DaemonSet reaches the runtime's CRI socket and the VMs' socket folders
  /// at the host's paths; a config without hybrid-vsock resources mounts neither.
  @Test func hybridVsockMountsTheCRISocketsAndTheSandboxFolders() throws {
    let objects = try Self.objects(try ManifestRenderer(options: ManifestOptions()).render())
    let container = try #require(Self.container(objects))
    let mounts = try #require(container["volumeMounts"] as? [[String: Any]])
    let byPath = Dictionary(mounts.map { ($0["mountPath"] as! String, $0) }, uniquingKeysWith: { a, _ in a })
    for path in ["/run/containerd", "/run/k3s/containerd", "/var/run/crio"] {
      #expect(byPath[path]?["readOnly"] as? Bool == true, "\(path)")
    }
    for path in ["/run/kata", "/run/vc/firecracker", "/run/vc/vm"] {
      #expect(byPath[path]?["mountPropagation"] as? String == "HostToContainer", "\(path)")
      #expect(byPath[path]?["readOnly"] == nil, "\(path): agents bind their sockets there")
    }
    #expect(byPath["/run/kata/firecracker"] == nil, "a folder inside another is not mounted twice")

    var options = ManifestOptions()
    options.configText = "version: v1\nresources:\n  - name: vaccel.org/accel\n"
    let plain = try Self.objects(try ManifestRenderer(options: options).render())
    let plainMounts = try #require(Self.container(plain)?["volumeMounts"] as? [[String: Any]])
    #expect(!plainMounts.contains { ($0["name"] as? String)?.hasPrefix("cri-") == true || ($0["name"] as? String)?.hasPrefix("sandboxes-") == true })
  }

  /// The agents' own pod: OnDelete, selected apart from the daemon's, no more privilege, the
  /// folders agents need and none of the kubelet's.
  @Test func theAgentHostDaemonSetOwnsTheAgents() throws {
    let objects = try Self.objects(try ManifestRenderer(options: ManifestOptions()).render())
    let host = try #require(Self.only("DaemonSet", objects).first { ($0["metadata"] as? [String: Any])?["name"] as? String == "vaccel-agent-host" })
    let spec = try #require(host["spec"] as? [String: Any])
    #expect((spec["updateStrategy"] as? [String: Any])?["type"] as? String == "OnDelete")
    #expect((spec["updateStrategy"] as? [String: Any])?["rollingUpdate"] == nil)
    #expect((spec["selector"] as? [String: Any])?["matchLabels"] as? [String: String] == ["app.kubernetes.io/name": "vaccel-agent-host"])
    let pod = try #require((spec["template"] as? [String: Any])?["spec"] as? [String: Any])
    #expect(pod["hostPID"] == nil && pod["hostNetwork"] == nil)
    let container = try #require((pod["containers"] as? [[String: Any]])?.first)
    #expect((container["args"] as? [String])?.prefix(3) == ["agent-host", "--socket", "/var/run/vaccel/agent-host/agent-host.sock"])
    let security = try #require(container["securityContext"] as? [String: Any])
    #expect((security["capabilities"] as? [String: Any])?["drop"] as? [String] == ["ALL"])
    #expect(security["readOnlyRootFilesystem"] as? Bool == true)
    let mounts = Set((container["volumeMounts"] as? [[String: Any]] ?? []).compactMap { $0["mountPath"] as? String })
    #expect(mounts.isSuperset(of: ["/var/run/vaccel", "/var/lib/vaccel-device-plugin", "/opt/vaccel", "/run/kata", "/run/user"]))
    #expect(!mounts.contains("/var/lib/kubelet/device-plugins") && !mounts.contains("/etc/vaccel-device-plugin"))
    // Without agentHost in the config, agents are the daemon's and no host is rendered.
    var options = ManifestOptions()
    options.configText = "version: v1\nresources:\n  - name: vaccel.org/accel\n"
    let plain = try Self.objects(try ManifestRenderer(options: options).render())
    #expect(Self.only("DaemonSet", plain).count == 1)
  }

  @Test func optionsChangeWhatTheySay() throws {
    var options = ManifestOptions()
    options.namespace = "accel"
    options.image = "registry.local/vdp:dev"
    options.runtimeClasses = [try RuntimeClassSpec(parsing: "kata-clh-vaccel=kata-clh@vaccel.org/accel-vm")]
    options.only = [.daemonSet, .runtimeClass]
    let objects = try Self.objects(try ManifestRenderer(options: options).render())
    #expect(objects.map { $0["kind"] as? String } == ["DaemonSet", "DaemonSet", "RuntimeClass"])
    #expect((objects[0]["metadata"] as? [String: Any])?["namespace"] as? String == "accel")
    #expect(try ManifestRenderer(options: options).render().components(separatedBy: "image: registry.local/vdp:dev").count == 3)
    #expect(objects[2]["handler"] as? String == "kata-clh")
  }

  @Test func k3sAddsTolerationsAndAutoDeployMovesRuntimeClassesToTheDaemon() throws {
    var options = ManifestOptions()
    options.k3s = true
    options.k3sAutoDeploy = true
    let renderer = try ManifestRenderer(options: options)
    #expect(renderer.config.k3sAutoDeployDir == "/var/lib/rancher/k3s/server/manifests")
    let text = try renderer.render()
    #expect(!text.contains("kind: RuntimeClass"))
    #expect(text.contains("node-role.kubernetes.io/control-plane"))
    #expect(text.contains("path: /var/lib/rancher/k3s/server/manifests"))
    // What the daemon writes equals what the bundle would have held.
    #expect(ManifestRenderer.defaultRuntimeClasses(for: renderer.config) == (try ManifestRenderer(options: ManifestOptions())).runtimeClassObjects())
  }

  @Test(arguments: [
    ("namespace", "Bad_NS", "not a DNS label"),
    ("runtime", "kata", "NAME=HANDLER"),
    ("runtime", "Kata=x", "not a DNS label"),
    ("runtime", "a=b@vaccel.org/nope", "no resource vaccel.org/nope"),
    ("runtime", "a=b,a=c", "given twice"),
    ("config", "version: v2\n", "version"),
    ("config", "version: v1\nmetrics:\n  address: \"\"\n", "probes need"),
    ("config", "version: v1\nresources:\n  - name: vaccel.org/accel\n    slots: 0\n", "resources[0].slots"),
  ])
  func badInputIsNamed(what: String, value: String, expected: String) throws {
    var options = ManifestOptions()
    do {
      switch what {
      case "namespace": options.namespace = value
      case "runtime": options.runtimeClasses = try value.split(separator: ",").map { try RuntimeClassSpec(parsing: String($0)) }
      default: options.configText = value
      }
      _ = try ManifestRenderer(options: options)
      Issue.record("\(what) \(value) was accepted")
    } catch {
      #expect("\(error)".contains(expected), "\(error)")
    }
  }

  @Test func containerdSnippetRegistersEveryHandlerInBothSchemas() {
    let text = ContainerdConfig.snippet(handlers: ["kata-qemu", "kata-fc-vaccel", "kata-qemu"], k3s: true)
    #expect(text.components(separatedBy: "{{ template \"base\" . }}").count == 3)
    #expect(text.contains("[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.kata-qemu]"))
    #expect(text.contains("[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.kata-fc-vaccel]"))
    #expect(text.contains("runtime_type = \"io.containerd.kata-fc-vaccel.v2\""))
    #expect(text.components(separatedBy: "runtimes.kata-qemu]").count == 3, "a handler listed twice is written once per schema")
    #expect(!ContainerdConfig.snippet(handlers: ["kata-qemu"], k3s: false).contains("template"))
  }
}
