/// The containerd runtime entries for the RuntimeClass handlers, in both config schemas:
/// version 2 (containerd 1.7, k3s `config.toml.tmpl`) and version 3 (containerd 2.x, k3s
/// `config-v3.toml.tmpl`). k3s regenerates `config.toml` on every start, so on k3s the entries
/// go into the template, after k3s's own `{{ template "base" . }}`.
public enum ContainerdConfig {
  public static let k3sConfigDir = "/var/lib/rancher/k3s/agent/etc/containerd"

  public static func snippet(handlers: [String], k3s: Bool) -> String {
    var seen = Set<String>()
    let handlers = handlers.filter { seen.insert($0).inserted }
    var out = ""
    for version in [2, 3] {
      let (file, containerd) = version == 2
        ? ("config.toml.tmpl", "containerd 1.7")
        : ("config-v3.toml.tmpl", "containerd 2.x")
      out += k3s
        ? "# \(containerd): \(k3sConfigDir)/\(file), then restart k3s (or k3s-agent)\n"
        : "# \(containerd): add to /etc/containerd/config.toml (version = \(version)), then restart containerd\n"
      if k3s { out += "{{ template \"base\" . }}\n" }
      for handler in handlers {
        let table = version == 2
          ? "plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.\(handler)"
          : "plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.\(handler)"
        out += """

          [\(table)]
            runtime_type = "io.containerd.\(handler).v2"
            privileged_without_host_devices = true
            pod_annotations = ["io.katacontainers.*"]

          """
      }
      if version == 2 { out += "\n" }
    }
    return out
  }
}
