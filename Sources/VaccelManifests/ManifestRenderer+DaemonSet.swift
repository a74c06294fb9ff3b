#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import VaccelConfig

extension ManifestRenderer {
  /// The DaemonSet as the well-kept device plugins ship it: node-critical, one pod per node
  /// replaced in place (`maxSurge: 0`, two daemons must never share the sockets), the host's
  /// kubelet folders at their own paths, no capabilities, a read-only root filesystem, and
  /// probes on /healthz and /readyz.
  func daemonSet() -> DaemonSet {
    let selector = ["app.kubernetes.io/name": Self.appName]
    let port = config.metricsPort ?? 9464
    let tolerations = self.tolerations()
    let (volumes, mounts) = hostVolumes()
    // Giving the status socket a group, or agent sockets an owner or group, needs CAP_CHOWN;
    // nothing else the daemon does needs a capability.
    let chowns = config.status.group != nil || config.resources.contains { $0.endpoint.uid != nil || $0.endpoint.gid != nil }
    let added = chowns ? ["CHOWN"] : nil
    let container = Container(
      name: Self.appName, image: options.image, imagePullPolicy: "IfNotPresent",
      args: ["--config", Self.configMountPath + "/" + Self.configKey],
      env: [
        EnvVar(name: "NODE_NAME", valueFrom: .init(fieldRef: .init(fieldPath: "spec.nodeName"))),
        EnvVar(name: "NODE_IP", valueFrom: .init(fieldRef: .init(fieldPath: "status.hostIP"))),
      ],
      ports: [ContainerPort(name: "metrics", containerPort: port)],
      // Requests only: the agents run in this container's cgroup and do the pods' work, so a
      // memory limit here would OOM-kill agents under load (see README, "Deploying").
      resources: Resources(requests: ["cpu": "50m", "memory": "128Mi"], limits: nil),
      securityContext: SecurityContext(
        runAsUser: 0, privileged: false, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true,
        capabilities: .init(drop: ["ALL"], add: added)),
      livenessProbe: Probe(httpGet: .init(path: "/healthz", port: "metrics"), periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 3),
      readinessProbe: Probe(httpGet: .init(path: "/readyz", port: "metrics"), periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 3),
      volumeMounts: mounts)
    return DaemonSet(
      metadata: meta(Self.appName),
      spec: .init(
        selector: LabelSelector(matchLabels: selector),
        updateStrategy: .init(rollingUpdate: .init(maxSurge: 0, maxUnavailable: 1)),
        template: PodTemplate(
          metadata: ObjectMeta(name: Self.appName, labels: Self.labels),
          spec: PodSpec(
            serviceAccountName: Self.appName, automountServiceAccountToken: false,
            priorityClassName: "system-node-critical",
            nodeSelector: [Self.nodeLabel: "true"], tolerations: tolerations,
            securityContext: PodSecurityContext(seccompProfile: SeccompProfile(type: "RuntimeDefault")),
            terminationGracePeriodSeconds: 30,
            containers: [container], volumes: volumes))))
  }

  /// Both DaemonSets run where the node is critical and vAccel's taint is.
  func tolerations() -> [Toleration] {
    var tolerations = [
      Toleration(key: "CriticalAddonsOnly", operator: "Exists"),
      Toleration(key: "vaccel.org/accel", operator: "Exists", effect: "NoSchedule"),
    ]
    if options.k3s {
      // k3s servers run workloads; HA servers carry these taints.
      tolerations += [
        Toleration(key: "node-role.kubernetes.io/control-plane", operator: "Exists", effect: "NoSchedule"),
        Toleration(key: "node-role.kubernetes.io/master", operator: "Exists", effect: "NoSchedule"),
      ]
    }
    return tolerations
  }

  static let agentHostName = "vaccel-agent-host"

  /// The agent host (`agentHost.socket` set): the agents' own pod, from the same image, with
  /// only what agents need (the run and state folders, the vAccel install, the VMs' folders).
  /// `OnDelete`: a new release of the chart or manifests never restarts it by itself, since
  /// every agent on the node stops with it; an operator replaces it node by node, drained.
  func agentHostDaemonSet() -> DaemonSet {
    let labels = ["app.kubernetes.io/name": Self.agentHostName, "app.kubernetes.io/part-of": "vaccel"]
    let tolerations = self.tolerations()
    let (volumes, mounts) = agentVolumes()
    let chowns = config.resources.contains { $0.endpoint.uid != nil || $0.endpoint.gid != nil }
    let container = Container(
      name: Self.agentHostName, image: options.image, imagePullPolicy: "IfNotPresent",
      args: ["agent-host", "--socket", config.agentHostSocket, "--log-format", config.logFormat.rawValue],
      env: nil, ports: nil,
      // Requests only: the agents do the pods' work here, and a memory limit would OOM-kill
      // them under load (see README, "Deploying").
      resources: Resources(requests: ["cpu": "50m", "memory": "128Mi"], limits: nil),
      securityContext: SecurityContext(
        runAsUser: 0, privileged: false, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true,
        capabilities: .init(drop: ["ALL"], add: chowns ? ["CHOWN"] : nil)),
      livenessProbe: nil, readinessProbe: nil,
      volumeMounts: mounts)
    return DaemonSet(
      metadata: meta(Self.agentHostName, labels: labels),
      spec: .init(
        selector: LabelSelector(matchLabels: ["app.kubernetes.io/name": Self.agentHostName]),
        updateStrategy: .init(type: "OnDelete", rollingUpdate: nil),
        template: PodTemplate(
          metadata: ObjectMeta(name: Self.agentHostName, labels: labels),
          spec: PodSpec(
            serviceAccountName: Self.appName, automountServiceAccountToken: false,
            priorityClassName: "system-node-critical",
            nodeSelector: [Self.nodeLabel: "true"], tolerations: tolerations,
            securityContext: PodSecurityContext(seccompProfile: SeccompProfile(type: "RuntimeDefault")),
            terminationGracePeriodSeconds: 30,
            containers: [container], volumes: volumes))))
  }

  /// What the agents need, at the host's paths: their sockets' folders (the run folder, or the
  /// VMs' folders), their logs (the state folder), the vAccel install, libvaccel's run folder.
  func agentVolumes() -> ([Volume], [VolumeMount]) {
    var volumes: [Volume] = []
    var mounts: [VolumeMount] = []
    func host(_ name: String, _ path: String, type: String, readOnly: Bool = false, propagation: String? = nil) {
      volumes.append(Volume(name: name, hostPath: .init(path: path, type: type)))
      mounts.append(VolumeMount(name: name, mountPath: path, readOnly: readOnly ? true : nil, mountPropagation: propagation))
    }
    host("run", config.runDir, type: "DirectoryOrCreate")
    host("state", config.stateDir, type: "DirectoryOrCreate")
    let socketDir = config.agentHostSocket.deletingLastPathComponent
    if !socketDir.isInside(config.runDir) {
      host("agent-host", socketDir, type: "DirectoryOrCreate")
    }
    for (index, path) in vaccelInstallPaths().enumerated() {
      host("vaccel-install-\(index)", path, type: "DirectoryOrCreate", readOnly: true)
    }
    if config.usesSandboxes {
      for (index, folder) in Self.outermost(config.sandboxes.vmSocketRoots).enumerated() {
        host("sandboxes-\(index)", folder, type: "DirectoryOrCreate", propagation: "HostToContainer")
      }
    }
    volumes.append(Volume(name: "run-user", emptyDir: .init(medium: "Memory", sizeLimit: "16Mi")))
    mounts.append(VolumeMount(name: "run-user", mountPath: "/run/user"))
    volumes.append(Volume(name: "tmp", emptyDir: .init(sizeLimit: "64Mi")))
    mounts.append(VolumeMount(name: "tmp", mountPath: "/tmp"))
    return (volumes, mounts)
  }

  /// Host folders at the same path inside and out (the kubelet and the pods see the host's
  /// paths), plus the config and two small scratch folders for a read-only root.
  func hostVolumes() -> ([Volume], [VolumeMount]) {
    var volumes: [Volume] = []
    var mounts: [VolumeMount] = []
    func host(_ name: String, _ path: String, type: String, readOnly: Bool = false) {
      volumes.append(Volume(name: name, hostPath: .init(path: path, type: type)))
      mounts.append(VolumeMount(name: name, mountPath: path, readOnly: readOnly ? true : nil))
    }
    host("device-plugins", config.kubelet.devicePluginDir, type: "Directory")
    host("pod-resources", config.kubelet.podResourcesSocket.deletingLastPathComponent, type: "Directory", readOnly: true)
    host("run", config.runDir, type: "DirectoryOrCreate")
    host("state", config.stateDir, type: "DirectoryOrCreate")
    let statusDir = config.statusSocket.deletingLastPathComponent
    if !config.statusSocket.isEmpty, !statusDir.isInside(config.runDir) {
      host("status", statusDir, type: "DirectoryOrCreate")
    }
    for (index, path) in vaccelInstallPaths().enumerated() {
      host("vaccel-install-\(index)", path, type: "DirectoryOrCreate", readOnly: true)
    }
    if config.usesSandboxes {
      // hybrid-vsock: the runtime's CRI socket (asked which sandbox a pod runs in), and the
      // folders of the VMs' sockets, beside which the agents listen. HostToContainer: the
      // runtime mounts inside a sandbox's folder after the daemon started.
      for (index, folder) in criFolders().enumerated() {
        host("cri-\(index)", folder, type: "DirectoryOrCreate", readOnly: true)
      }
      for (index, folder) in Self.outermost(config.sandboxes.vmSocketRoots).enumerated() {
        volumes.append(Volume(name: "sandboxes-\(index)", hostPath: .init(path: folder, type: "DirectoryOrCreate")))
        mounts.append(VolumeMount(name: "sandboxes-\(index)", mountPath: folder, readOnly: nil, mountPropagation: "HostToContainer"))
      }
    }
    if options.k3s {
      host("k3s-containerd", Self.k3sContainerdConfigDir, type: "DirectoryOrCreate", readOnly: true)
    }
    if !config.k3sAutoDeployDir.isEmpty {
      host("k3s-manifests", config.k3sAutoDeployDir, type: "DirectoryOrCreate")
    }
    volumes.append(Volume(name: "config", configMap: .init(name: configMapName)))
    mounts.append(VolumeMount(name: "config", mountPath: Self.configMountPath, readOnly: true))
    // libvaccel creates /run/user/<uid>/vaccel in every agent; /tmp for anything else.
    volumes.append(Volume(name: "run-user", emptyDir: .init(medium: "Memory", sizeLimit: "16Mi")))
    mounts.append(VolumeMount(name: "run-user", mountPath: "/run/user"))
    volumes.append(Volume(name: "tmp", emptyDir: .init(sizeLimit: "64Mi")))
    mounts.append(VolumeMount(name: "tmp", mountPath: "/tmp"))
    return (volumes, mounts)
  }

  /// The folders of the CRI sockets the daemon may ask, in the config's order.
  func criFolders() -> [String] {
    Self.outermost(config.sandboxes.criSockets.map(\.deletingLastPathComponent))
  }

  /// `paths` without duplicates or any that lies inside another, in their order. Lexical only:
  /// the render must not depend on the machine it runs on (/var/run is a link on some).
  static func outermost(_ paths: [String]) -> [String] {
    let trimmed = paths.map { path in
      var path = path
      while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
      return path
    }
    var kept: [String] = []
    for path in trimmed where !trimmed.contains(where: { path != $0 && path.isInside($0) }) && !kept.contains(path) {
      kept.append(path)
    }
    return kept
  }

  /// The host's vAccel install as the config names it: the prefix of each absolute agent
  /// binary (`/opt/vaccel` for `/opt/vaccel/bin/vaccel-rpc-agent`) and each library folder,
  /// except system folders the image has its own copy of.
  func vaccelInstallPaths() -> [String] {
    let system = ["/", "/usr", "/usr/local", "/lib", "/lib64", "/usr/lib", "/usr/lib64", "/bin", "/usr/bin", "/usr/local/bin"]
    let agents = [config.agent] + config.resources.filter { $0.agents == .managed }.map(\.agent)
    var paths: [String] = []
    for agent in agents {
      if agent.binary.hasPrefix("/") {
        let bin = agent.binary.deletingLastPathComponent
        paths.append(bin.lastPathComponent == "bin" ? bin.deletingLastPathComponent : bin)
      }
      if let libraryPath = agent.libraryPath {
        paths += libraryPath.split(separator: ":").map(String.init).filter { $0.hasPrefix("/") }
      }
    }
    var kept: [String] = []
    for path in paths.map(\.standardizingPath).sorted()
    where !system.contains(path) && !kept.contains(where: { path.isInside($0) }) {
      kept.append(path)
    }
    return kept
  }

  /// One example pod per way of reaching an agent: a plain one, and one per RuntimeClass, each
  /// saying in an annotation what its node needs (`options.examples` picks).
  func examplePods() -> [Pod] {
    var pods: [Pod] = []
    if options.examples != .vm {
      let plain = config.resources.first { $0.transport == .unix && $0.agents == .managed } ?? config.resources[0]
      pods.append(examplePod(
        name: "vaccel-example", resource: plain.name, runtimeClass: nil,
        needs: "a node labelled \(Self.nodeLabel)=true (the daemon runs there)"))
    }
    if options.examples != .plain {
      for (spec, resource) in runtimeClasses {
        pods.append(examplePod(
          name: "vaccel-example-\(spec.name)", resource: resource.name, runtimeClass: spec.name,
          needs: "Kata with handler \(spec.handler), node labels \(Self.nodeLabel) and \(Self.kataNodeLabel); else Pending"))
      }
    }
    return pods
  }

  private func examplePod(name: String, resource: String, runtimeClass: String?, needs: String) -> Pod {
    let script = "echo VACCEL_RPC_ADDRESS=$VACCEL_RPC_ADDRESS VACCEL_PLUGINS=$VACCEL_PLUGINS; ls -l /var/run/vaccel 2>/dev/null; sleep infinity"
    var metadata = ObjectMeta(name: name, namespace: "default", labels: ["app.kubernetes.io/name": name])
    metadata.annotations = ["vaccel.org/needs": needs]
    return Pod(
      metadata: metadata,
      spec: PodSpec(
        runtimeClassName: runtimeClass,
        securityContext: PodSecurityContext(seccompProfile: SeccompProfile(type: "RuntimeDefault")),
        restartPolicy: "Never",
        containers: [
          Container(
            name: "app", image: "debian:bookworm-slim", command: ["sh", "-c", script],
            resources: Resources(requests: nil, limits: [resource: "1"]),
            securityContext: SecurityContext(allowPrivilegeEscalation: false, capabilities: .init(drop: ["ALL"])))
        ]))
  }
}

extension String {
  /// `self` is `folder` or below it.
  func isInside(_ folder: String) -> Bool {
    self == folder || hasPrefix(folder.hasSuffix("/") ? folder : folder + "/")
  }
}
