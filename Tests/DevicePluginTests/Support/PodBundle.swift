import Foundation
import Yams

/// The rendered DaemonSet's pod, made into an OCI runtime bundle the way a kubelet and its
/// runtime would make it, from the manifest itself rather than from a copy of its settings: the
/// container's args and env, its securityContext, the pod's seccomp profile, and every volume
/// (hostPath under a folder that stands for the host's `/`, configMap as files, emptyDir).
struct PodBundle {
  let manifest: String
  /// Stands for the host's `/`: a hostPath volume `/x` is `<hostRoot>/x`.
  let hostRoot: String
  let scratch: String
  /// Which DaemonSet's pod (the manifest has the daemon's and the agent host's).
  var daemonSet = "vaccel-device-plugin"

  struct Failure: Error, CustomStringConvertible {
    let description: String
  }

  /// The DaemonSet's pod spec and the ConfigMaps beside it in the manifest.
  private func documents() throws -> (pod: [String: Any], configMaps: [String: [String: String]]) {
    let text = try String(contentsOfFile: manifest, encoding: .utf8)
    var pod: [String: Any]?
    var configMaps: [String: [String: String]] = [:]
    for case let document as [String: Any] in try Yams.load_all(yaml: text) {
      let metadata = document["metadata"] as? [String: Any]
      switch document["kind"] as? String {
      case "DaemonSet" where metadata?["name"] as? String == daemonSet:
        pod = ((document["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any]
      case "ConfigMap":
        if let name = metadata?["name"] as? String { configMaps[name] = document["data"] as? [String: String] ?? [:] }
      default: break
      }
    }
    guard let pod else { throw Failure(description: "no DaemonSet \(daemonSet) in \(manifest)") }
    return (pod, configMaps)
  }

  /// The resources the ConfigMap's config.yaml lists, by name.
  func resourceNames() throws -> [String] {
    let (_, configMaps) = try documents()
    guard let config = configMaps.values.compactMap({ $0["config.yaml"] }).first,
      let root = try Yams.load(yaml: config) as? [String: Any]
    else { throw Failure(description: "no config.yaml in a ConfigMap of \(manifest)") }
    return (root["resources"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
  }

  /// Rewrites `<bundle>/config.json` (umoci's, from the image's config) as the DaemonSet's pod.
  /// `seccomp`: an OCI `linux.seccomp` for `seccompProfile: RuntimeDefault`.
  func apply(to bundle: String, seccomp: [String: Any], env fieldValues: [String: String]) throws {
    let (pod, configMaps) = try documents()
    guard let container = (pod["containers"] as? [[String: Any]])?.first else { throw Failure(description: "the DaemonSet has no container") }
    let path = bundle + "/config.json"
    guard var spec = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any],
      var process = spec["process"] as? [String: Any], var linux = spec["linux"] as? [String: Any]
    else { throw Failure(description: "\(path) is not a runtime spec") }

    // The image's entrypoint with the container's args; its env with the container's.
    process["args"] = (process["args"] as? [String] ?? []) + (container["args"] as? [String] ?? [])
    var env = process["env"] as? [String] ?? []
    for variable in container["env"] as? [[String: Any]] ?? [] {
      guard let name = variable["name"] as? String else { continue }
      if let value = variable["value"] as? String {
        env.append("\(name)=\(value)")
      } else if let field = ((variable["valueFrom"] as? [String: Any])?["fieldRef"] as? [String: Any])?["fieldPath"] as? String {
        guard let value = fieldValues[field] else { throw Failure(description: "env \(name) needs \(field), which the test does not provide") }
        env.append("\(name)=\(value)")
      }
    }
    process["env"] = env
    process["terminal"] = false

    // securityContext.
    let security = container["securityContext"] as? [String: Any] ?? [:]
    if security["privileged"] as? Bool == true { throw Failure(description: "a privileged container is not what this test runs") }
    let uid = security["runAsUser"] as? Int ?? 0
    process["user"] = ["uid": uid, "gid": 0]
    process["noNewPrivileges"] = security["allowPrivilegeEscalation"] as? Bool == false
    let capabilities = security["capabilities"] as? [String: Any] ?? [:]
    let dropped = capabilities["drop"] as? [String] ?? []
    var kept = dropped.contains("ALL") ? [] : (process["capabilities"] as? [String: Any])?["bounding"] as? [String] ?? []
    kept.removeAll { dropped.contains(String($0.dropFirst("CAP_".count))) }
    kept += (capabilities["add"] as? [String] ?? []).map { "CAP_" + $0 }
    process["capabilities"] = ["bounding": kept, "effective": kept, "permitted": kept, "inheritable": [String](), "ambient": [String]()]
    spec["process"] = process
    spec["root"] = ["path": "rootfs", "readonly": security["readOnlyRootFilesystem"] as? Bool == true]
    spec["hostname"] = "vaccel-device-plugin"

    let podSecurity = pod["securityContext"] as? [String: Any] ?? [:]
    let profile = ((security["seccompProfile"] ?? podSecurity["seccompProfile"]) as? [String: Any])?["type"] as? String
    switch profile {
    case "RuntimeDefault": linux["seccomp"] = seccomp
    case nil, "Unconfined": linux.removeValue(forKey: "seccomp")
    default: throw Failure(description: "seccompProfile \(profile!) is not one this test applies")
    }
    spec["linux"] = linux

    // Volumes, at the container's mount paths.
    var volumes: [String: [String: Any]] = [:]
    for volume in pod["volumes"] as? [[String: Any]] ?? [] {
      if let name = volume["name"] as? String { volumes[name] = volume }
    }
    var mounts = spec["mounts"] as? [[String: Any]] ?? []
    for mount in container["volumeMounts"] as? [[String: Any]] ?? [] {
      guard let name = mount["name"] as? String, let target = mount["mountPath"] as? String, let volume = volumes[name] else {
        throw Failure(description: "volumeMount \(mount) names no volume")
      }
      let readOnly = mount["readOnly"] as? Bool == true
      let propagation = mount["mountPropagation"] as? String == "HostToContainer" ? "rslave" : "rprivate"
      let source: String
      if let hostPath = volume["hostPath"] as? [String: Any], let path = hostPath["path"] as? String {
        source = hostRoot + path
        switch hostPath["type"] as? String {
        case "DirectoryOrCreate":
          try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        case "Directory":
          var isFolder: ObjCBool = false
          guard FileManager.default.fileExists(atPath: source, isDirectory: &isFolder), isFolder.boolValue else {
            throw Failure(description: "hostPath \(path) (type Directory) does not exist on the host")
          }
        case let type: throw Failure(description: "hostPath type \(type ?? "none") is not one this test makes")
        }
      } else if let configMap = (volume["configMap"] as? [String: Any])?["name"] as? String {
        guard let data = configMaps[configMap] else { throw Failure(description: "ConfigMap \(configMap) is not in the manifest") }
        source = scratch + "/configmaps/" + configMap
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        for (key, value) in data { try value.write(toFile: source + "/" + key, atomically: true, encoding: .utf8) }
      } else if let emptyDir = volume["emptyDir"] as? [String: Any] {
        if emptyDir["medium"] as? String == "Memory" {
          var options = ["nosuid", "nodev", "mode=1777"]
          if let limit = emptyDir["sizeLimit"] as? String { options.append("size=" + limit.replacingOccurrences(of: "Mi", with: "m")) }
          mounts.append(["destination": target, "type": "tmpfs", "source": "tmpfs", "options": options])
          continue
        }
        source = scratch + "/emptydir/" + name
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
      } else {
        throw Failure(description: "volume \(name) is of a kind this test does not make")
      }
      mounts.append([
        "destination": target, "type": "bind", "source": source,
        "options": ["rbind", readOnly ? "ro" : "rw", propagation, "nosuid", "nodev"],
      ])
    }
    spec["mounts"] = mounts
    let data = try JSONSerialization.data(withJSONObject: spec, options: [.prettyPrinted, .sortedKeys])
    try data.write(to: URL(fileURLWithPath: path))
  }

  /// containers-common's default profile (`/usr/share/containers/seccomp.json`, what CRI-O
  /// applies for RuntimeDefault) in the runtime spec's form, for x86_64 and a process holding
  /// `capabilities`: rules for other architectures or for capabilities it lacks are dropped.
  static func runtimeDefaultSeccomp(_ profilePath: String, capabilities: [String]) throws -> [String: Any] {
    guard let profile = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: profilePath))) as? [String: Any],
      let rules = profile["syscalls"] as? [[String: Any]]
    else { throw Failure(description: "\(profilePath) is not a seccomp profile") }
    let archMap = profile["archMap"] as? [[String: Any]] ?? []
    let native = archMap.first { $0["architecture"] as? String == "SCMP_ARCH_X86_64" }
    var seccomp: [String: Any] = [
      "defaultAction": profile["defaultAction"] as? String ?? "SCMP_ACT_ERRNO",
      "architectures": ["SCMP_ARCH_X86_64"] + (native?["subArchitectures"] as? [String] ?? []),
    ]
    if let errno = profile["defaultErrnoRet"] { seccomp["defaultErrnoRet"] = errno }
    var syscalls: [[String: Any]] = []
    for rule in rules {
      let includes = rule["includes"] as? [String: Any] ?? [:]
      let excludes = rule["excludes"] as? [String: Any] ?? [:]
      if let needed = includes["caps"] as? [String], !needed.allSatisfy(capabilities.contains) { continue }
      if let arches = includes["arches"] as? [String], !arches.isEmpty, !arches.contains("amd64") { continue }
      if let without = excludes["caps"] as? [String], without.contains(where: capabilities.contains) { continue }
      if let arches = excludes["arches"] as? [String], arches.contains("amd64") { continue }
      var converted: [String: Any] = ["names": rule["names"] ?? [], "action": rule["action"] ?? "SCMP_ACT_ALLOW"]
      if let args = rule["args"] as? [[String: Any]], !args.isEmpty { converted["args"] = args }
      if let errno = rule["errnoRet"] { converted["errnoRet"] = errno }
      syscalls.append(converted)
    }
    seccomp["syscalls"] = syscalls
    return seccomp
  }
}
