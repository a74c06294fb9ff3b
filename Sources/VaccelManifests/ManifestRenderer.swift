#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
public import VaccelConfig

/// One rendered object.
public struct ManifestDocument: Sendable {
  public var kind: ManifestKind
  public var name: String
  public var object: any Encodable & Sendable
}

/// Builds the deployment from typed models: same options, same objects, same bytes.
public struct ManifestRenderer: Sendable {
  public static let appName = "vaccel-device-plugin"
  public static let nodeLabel = "vaccel.org/node"
  public static let kataNodeLabel = "katacontainers.io/kata-runtime"
  public static let configMountPath = "/etc/vaccel-device-plugin"
  public static let configKey = "config.yaml"
  public static let k3sContainerdConfigDir = "/var/lib/rancher/k3s/agent/etc/containerd"
  public static let k3sAutoDeployDir = "/var/lib/rancher/k3s/server/manifests"

  public let options: ManifestOptions
  /// The daemon config the ConfigMap carries, parsed and validated as the daemon will.
  public let config: DaemonConfig
  public let configText: String
  /// Each RuntimeClass with the resource that serves its pods.
  public let runtimeClasses: [(spec: RuntimeClassSpec, resource: ResourceConfig)]

  public init(options: ManifestOptions) throws(ManifestError) {
    self.options = options
    var text = options.configText ?? DefaultDaemonConfig.yaml
    guard DNSLabel.isValid(options.namespace) else {
      throw .badOption("--namespace '\(options.namespace)' is not a DNS label (lowercase letters, digits, '-', at most 63)")
    }
    guard !options.image.isEmpty, !options.image.contains(where: \.isWhitespace) else {
      throw .badOption("--image '\(options.image)' is not an image reference")
    }
    if options.k3sAutoDeploy {
      guard options.runtimeClasses == nil else {
        throw .badOption("--k3s-auto-deploy writes the default RuntimeClasses from the daemon; it cannot be combined with --runtime-class")
      }
      guard !text.contains("\nk3s:"), !text.hasPrefix("k3s:") else {
        throw .badConfig("\(options.configSource): remove its k3s: section; --k3s-auto-deploy sets k3s.autoDeployDir")
      }
      text += "k3s:\n  autoDeployDir: \(Self.k3sAutoDeployDir)\n"
    }
    do {
      self.config = try ConfigLoader.load(yaml: text, source: options.configSource)
    } catch {
      throw .badConfig("\(error)")
    }
    guard !config.metricsAddress.isEmpty, config.metricsPort != nil else {
      throw .badConfig("\(options.configSource): metrics.address is off, but the DaemonSet's liveness and readiness probes need /healthz and /readyz")
    }
    self.configText = text
    self.runtimeClasses = try Self.pair(options.runtimeClasses ?? RuntimeClassSpec.defaults, with: config, explicit: options.runtimeClasses != nil)
  }

  /// Every selected object, in apply order.
  public func documents() -> [ManifestDocument] {
    var all: [ManifestDocument] = [
      ManifestDocument(kind: .namespace, name: options.namespace, object: namespace()),
      ManifestDocument(kind: .serviceAccount, name: Self.appName, object: serviceAccount()),
      ManifestDocument(kind: .configMap, name: configMapName, object: configMap()),
      ManifestDocument(kind: .daemonSet, name: Self.appName, object: daemonSet()),
    ]
    if !config.agentHostSocket.isEmpty {
      all.append(ManifestDocument(kind: .daemonSet, name: Self.agentHostName, object: agentHostDaemonSet()))
    }
    if !options.k3sAutoDeploy || options.only?.contains(.runtimeClass) == true {
      all += runtimeClassObjects().map { ManifestDocument(kind: .runtimeClass, name: $0.metadata.name, object: $0) }
    }
    all += examplePods().map { ManifestDocument(kind: .pod, name: $0.metadata.name, object: $0) }
    let kinds = options.only ?? Set(ManifestKind.allCases).subtracting([.pod])
    return all.filter { kinds.contains($0.kind) }
  }

  public func render() throws(ManifestError) -> String {
    try ManifestYAML.stream(documents().map(\.object))
  }

  /// Pairs each RuntimeClass with the resource its pods ask for. Defaults without a fitting
  /// resource are left out; an explicit one is an error.
  static func pair(
    _ specs: [RuntimeClassSpec], with config: DaemonConfig, explicit: Bool
  ) throws(ManifestError) -> [(spec: RuntimeClassSpec, resource: ResourceConfig)] {
    var paired: [(spec: RuntimeClassSpec, resource: ResourceConfig)] = []
    var names = Set<String>()
    for spec in specs {
      guard names.insert(spec.name).inserted else {
        throw .badOption("--runtime-class \(spec.name) is given twice")
      }
      let resource: ResourceConfig?
      if let wanted = spec.resource, explicit {
        resource = config.resources.first { $0.name == wanted }
        guard resource != nil else {
          throw .badOption("--runtime-class \(spec.name): the config has no resource \(wanted) (it has: \(config.resources.map(\.name).joined(separator: ", ")))")
        }
      } else if let wanted = spec.resource {
        // A default: its resource, else the config's own hybrid-vsock one (the only kind that
        // serves stock Kata's hybrid-vsock handlers).
        resource = config.resources.first { $0.name == wanted }
          ?? config.resources.first { $0.transport == .hybridVsock && $0.agents == .managed }
      } else {
        let vmCapable = config.resources.filter { $0.transport == .vsock || $0.agents == .runtime }
        resource = spec.handler == spec.name || spec.handler.hasSuffix("-vaccel")
          ? (config.resources.first { $0.agents == .runtime } ?? vmCapable.first)
          : (vmCapable.first { $0.agents == .managed } ?? config.resources.first { $0.agents == .runtime })
      }
      guard let resource else {
        if explicit {
          throw .badOption("--runtime-class \(spec.name): no resource in the config serves VM sandboxes (transport vsock, hybrid-vsock or agents: runtime); name one with NAME=HANDLER@RESOURCE")
        }
        continue
      }
      paired.append((spec, resource))
    }
    return paired
  }

  var configMapName: String { Self.appName + "-config" }

  static var labels: [String: String] {
    ["app.kubernetes.io/name": appName, "app.kubernetes.io/part-of": "vaccel"]
  }

  func meta(_ name: String, namespaced: Bool = true, labels: [String: String]? = Self.labels) -> ObjectMeta {
    ObjectMeta(name: name, namespace: namespaced ? options.namespace : nil, labels: labels)
  }

  func namespace() -> Namespace {
    // hostPath volumes are outside the baseline Pod Security level: say so for this namespace only.
    var labels = Self.labels
    labels["pod-security.kubernetes.io/enforce"] = "privileged"
    return Namespace(metadata: meta(options.namespace, namespaced: false, labels: labels))
  }

  func serviceAccount() -> ServiceAccount {
    // The daemon never calls the API server.
    ServiceAccount(metadata: meta(Self.appName), automountServiceAccountToken: false)
  }

  func configMap() -> ConfigMap {
    ConfigMap(metadata: meta(configMapName), data: [Self.configKey: configText])
  }

  public func runtimeClassObjects() -> [RuntimeClass] {
    Self.runtimeClassObjects(runtimeClasses)
  }

  /// The default RuntimeClasses for the resources `config` serves: what the daemon writes into
  /// a k3s server's auto-deploy folder.
  public static func defaultRuntimeClasses(for config: DaemonConfig) -> [RuntimeClass] {
    // The defaults never fail to pair: without a fitting resource they are left out.
    runtimeClassObjects((try? pair(RuntimeClassSpec.defaults, with: config, explicit: false)) ?? [])
  }

  static func runtimeClassObjects(_ paired: [(spec: RuntimeClassSpec, resource: ResourceConfig)]) -> [RuntimeClass] {
    paired.map { spec, resource in
      var metadata = ObjectMeta(name: spec.name, labels: Self.labels)
      metadata.annotations = [
        "vaccel.org/resource": resource.name,
        "vaccel.org/agents": resource.agents == .managed ? "vaccel-device-plugin" : "runtime",
      ]
      return RuntimeClass(
        metadata: metadata, handler: spec.handler,
        overhead: .init(podFixed: ["memory": spec.overheadMemory, "cpu": spec.overheadCPU]),
        scheduling: .init(nodeSelector: [Self.nodeLabel: "true", Self.kataNodeLabel: "true"], tolerations: nil))
    }
  }
}
