import VaccelConfig

/// What `vaccelctl manifests` (and the Helm chart's values) decide.
public struct ManifestOptions: Sendable, Equatable {
  public static let defaultNamespace = "vaccel-system"
  public static let defaultImage = "ghcr.io/vaccel-device-plugin/vaccel-device-plugin:\(BuildInfo.version)"

  public var namespace = ManifestOptions.defaultNamespace
  public var image = ManifestOptions.defaultImage
  /// The daemon config as YAML text; nil: `DefaultDaemonConfig.yaml`.
  public var configText: String?
  /// Names the config in errors (a file path).
  public var configSource = "the built-in config"
  /// k3s nodes: control-plane tolerations, the k3s containerd config mounted for `doctor`.
  public var k3s = false
  /// The daemon writes the RuntimeClasses into the k3s server's auto-deploy folder (instead of
  /// them being part of the bundle).
  public var k3sAutoDeploy = false
  /// nil: `RuntimeClassSpec.defaults`.
  public var runtimeClasses: [RuntimeClassSpec]?
  /// nil: every kind except the example Pods.
  public var only: Set<ManifestKind>?
  /// Which example Pods: the plain one, the VM-sandboxed ones (one per RuntimeClass), or all.
  public var examples: ExamplePods = .all

  public init() {}
}

/// The example Pods apart: a plain one runs on any node with the daemon; a VM-sandboxed one
/// stays Pending without Kata and its handler on the node.
public enum ExamplePods: String, Sendable, CaseIterable {
  case plain, vm, all
}

public enum ManifestKind: String, Sendable, CaseIterable, Comparable {
  case namespace = "Namespace"
  case serviceAccount = "ServiceAccount"
  case configMap = "ConfigMap"
  case daemonSet = "DaemonSet"
  case runtimeClass = "RuntimeClass"
  case pod = "Pod"

  /// Case-insensitive, plural accepted (`runtimeclasses`, `pods`).
  public init?(name: String) {
    let lowered = name.lowercased()
    guard let kind = Self.allCases.first(where: {
      let own = $0.rawValue.lowercased()
      return lowered == own || lowered == own + "s" || lowered == own + "es"
    }) else { return nil }
    self = kind
  }

  public static func < (a: Self, b: Self) -> Bool {
    allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
  }
}

/// A RuntimeClass for VM-sandboxed vAccel pods, and the resource its pods request.
public struct RuntimeClassSpec: Sendable, Equatable {
  public var name: String
  public var handler: String
  /// The resource that serves pods of this class; nil: picked from the config (a vsock resource
  /// the daemon manages agents for, else one whose runtime starts its own).
  public var resource: String?
  public var overheadMemory: String
  public var overheadCPU: String

  public init(name: String, handler: String, resource: String? = nil, overheadMemory: String = "160Mi", overheadCPU: String = "250m") {
    self.name = name
    self.handler = handler
    self.resource = resource
    self.overheadMemory = overheadMemory
    self.overheadCPU = overheadCPU
  }

  /// `vaccel-kata-fc`, `vaccel-kata-clh`, `vaccel-kata-dragonball`: stock Kata (kata-deploy's
  /// handlers), hybrid vsock, each pod's agent started by the daemon beside its own VM.
  /// `kata-qemu-vaccel`: Kata with QEMU, agents started by the daemon and reached over vsock.
  /// `kata-fc-vaccel`: the Kata-vAccel Firecracker runtime, which starts its own agents.
  public static let defaults = [
    RuntimeClassSpec(name: "vaccel-kata-fc", handler: "kata-fc", resource: hybridVsockResource, overheadMemory: "130Mi", overheadCPU: "250m"),
    RuntimeClassSpec(name: "vaccel-kata-clh", handler: "kata-clh", resource: hybridVsockResource, overheadMemory: "130Mi", overheadCPU: "250m"),
    RuntimeClassSpec(
      name: "vaccel-kata-dragonball", handler: "kata-dragonball", resource: hybridVsockResource, overheadMemory: "130Mi", overheadCPU: "250m"),
    RuntimeClassSpec(name: "kata-qemu-vaccel", handler: "kata-qemu", overheadMemory: "160Mi", overheadCPU: "250m"),
    RuntimeClassSpec(name: "kata-fc-vaccel", handler: "kata-fc-vaccel", overheadMemory: "130Mi", overheadCPU: "250m"),
  ]

  /// The default config's hybrid-vsock resource; a config without it gets the hybrid-vsock
  /// RuntimeClasses paired with its own hybrid-vsock resource, or none.
  public static let hybridVsockResource = "vaccel.org/accel-hvsock"

  /// `NAME=HANDLER` or `NAME=HANDLER@RESOURCE`, as `--runtime-class` takes it.
  public init(parsing text: String) throws(ManifestError) {
    let (pair, resource): (Substring, Substring?) = {
      guard let at = text.firstIndex(of: "@") else { return (text[...], nil) }
      return (text[..<at], text[text.index(after: at)...])
    }()
    let parts = pair.split(separator: "=", omittingEmptySubsequences: false)
    guard parts.count == 2, let name = parts.first, let handler = parts.last else {
      throw .badOption("--runtime-class '\(text)' is not NAME=HANDLER or NAME=HANDLER@RESOURCE")
    }
    for (what, value) in [("name", name), ("handler", handler)] where !DNSLabel.isValid(String(value)) {
      throw .badOption("--runtime-class '\(text)': the \(what) '\(value)' is not a DNS label (lowercase letters, digits, '-', at most 63)")
    }
    if let resource, resource.isEmpty {
      throw .badOption("--runtime-class '\(text)': the resource after '@' is empty")
    }
    self.init(name: String(name), handler: String(handler), resource: resource.map(String.init))
  }
}

/// RFC 1123 labels: what RuntimeClass handlers and names must be.
enum DNSLabel {
  static func isValid(_ text: String) -> Bool {
    guard (1...63).contains(text.utf8.count), text.first != "-", text.last != "-" else { return false }
    return text.utf8.allSatisfy { (0x61...0x7a).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2d }
  }
}

public enum ManifestError: Error, Equatable, CustomStringConvertible {
  case badOption(String)
  case badConfig(String)

  public var description: String {
    switch self {
    case .badOption(let message), .badConfig(let message): message
    }
  }
}
