#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

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
        out += """

          [\(table(handler, version: version))]
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

/// k3s's two ways to add runtime handlers. Since k3s pull request 13680 (February 2026) the
/// config k3s generates imports a drop-in folder beside it, `config-v3.toml.d/*.toml`
/// (containerd 2.x) or `config.toml.d/*.toml` (1.7): a file there adds handlers without
/// replacing k3s's template (kata-deploy 4 requires that import). Older k3s needs the template.
extension ContainerdConfig {
  /// What a node's generated `config.toml` says.
  public struct K3sForm: Sendable, Equatable {
    /// The config schema: 3 for containerd 2.x, 2 for 1.7.
    public var version: Int
    /// The drop-in folder its `imports` names, if it has one.
    public var dropInDir: String?

    public init(version: Int, dropInDir: String?) {
      self.version = version
      self.dropInDir = dropInDir
    }
  }

  public static func k3sForm(generated text: String, configDir: String = k3sConfigDir) -> K3sForm {
    let version = text.split(separator: "\n").contains { $0.filter { $0 != " " } == "version=3" } ? 3 : 2
    let folder = version == 3 ? "config-v3.toml.d" : "config.toml.d"
    let imports = text.split(separator: "\n").first { $0.drop { $0 == " " || $0 == "\t" }.hasPrefix("imports") }
    let dropIn = imports.map(String.init).flatMap { $0.contains(folder + "/*.toml") ? configDir + "/" + folder : nil }
    return K3sForm(version: version, dropInDir: dropIn)
  }

  /// A drop-in file for `form`'s folder: the handlers' tables only, with the file's own
  /// `version` (containerd reads an imported file by its version, as the main one).
  public static func k3sDropIn(handlers: [String], form: K3sForm) -> String {
    var seen = Set<String>()
    var out = "# \(form.dropInDir ?? k3sConfigDir)/50-vaccel.toml, then restart k3s (or k3s-agent)\nversion = \(form.version)\n"
    for handler in handlers where seen.insert(handler).inserted {
      out += "\n[\(table(handler, version: form.version))]\n  runtime_type = \"io.containerd.\(handler).v2\"\n"
        + "  privileged_without_host_devices = true\n  pod_annotations = [\"io.katacontainers.*\"]\n"
    }
    return out
  }

  /// The handlers whose runtime table appears in any of `texts` (configs, templates, drop-ins).
  public static func configuredHandlers(_ handlers: [String], in texts: [String]) -> [String] {
    handlers.filter { handler in
      texts.contains { $0.contains("containerd.runtimes.\(handler)]") || $0.contains("containerd.runtimes.'\(handler)']") }
    }
  }

  static func table(_ handler: String, version: Int) -> String {
    version == 2
      ? "plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.\(handler)"
      : "plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.\(handler)"
  }
}
