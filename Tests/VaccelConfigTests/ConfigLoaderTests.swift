import Foundation
import Testing

@testable import VaccelConfig

@Suite("ConfigLoader: defaults < file < environment < flags, validated in one place")
struct ConfigLoaderTests {
  /// Writes `yaml` to a fresh file and returns its path.
  func file(_ yaml: String) throws -> String {
    let path = NSTemporaryDirectory() + "vdp-config-\(UUID().uuidString).yaml"
    try yaml.write(toFile: path, atomically: true, encoding: .utf8)
    return path
  }

  func load(_ yaml: String, env: [String: String] = [:], flags: ConfigOverrides = .init()) throws -> DaemonConfig {
    var flags = flags
    let path = try file(yaml)
    defer { try? FileManager.default.removeItem(atPath: path) }
    flags.configPath = path
    return try ConfigLoader.load(flags: flags, environment: env)
  }

  /// Loads `yaml` expecting a ConfigError on `field`.
  func expectError(_ yaml: String, field: String, mentions: String, env: [String: String] = [:]) throws {
    do {
      _ = try load(yaml, env: env)
      Issue.record("expected an error on \(field)")
    } catch let error as ConfigError {
      #expect(error.field == field, "\(error)")
      #expect(error.description.contains(mentions), "\(error)")
    }
  }

  @Test func noFileGivesTheDocumentedDefaults() throws {
    let config = try ConfigLoader.load()
    #expect(config == DaemonConfig())
    #expect(config.kubelet.devicePluginDir == "/var/lib/kubelet/device-plugins")
    #expect(config.kubelet.podResourcesSocket == "/var/lib/kubelet/pod-resources/kubelet.sock")
    #expect(config.runDir == "/var/run/vaccel")
    #expect(config.stateDir == "/var/lib/vaccel-device-plugin")
    #expect(config.resources == [ResourceConfig(name: "vaccel.org/accel", slots: 8, transport: .unix)])
  }

  @Test func readsTheIssueExample() throws {
    let config = try load("""
      version: v1
      kubelet:
        devicePluginDir: /var/lib/kubelet/device-plugins
        podResourcesSocket: /var/lib/kubelet/pod-resources/kubelet.sock
      runDir: /var/run/vaccel            # per-slot endpoint folders
      stateDir: /var/lib/vaccel-device-plugin
      resources:
        - name: vaccel.org/accel
          slots: 8                       # devices advertised
          transport: unix
      """)
    #expect(config == DaemonConfig())
  }

  @Test func readsEveryField() throws {
    let config = try load("""
      version: v1
      logLevel: debug
      logFormat: json
      metrics: {address: "127.0.0.1:9000"}
      kubelet: {devicePluginDir: /dp, podResourcesSocket: /pr.sock, recheckInterval: 2s}
      runDir: /run/v
      stateDir: /state
      resources:
        - {name: vaccel.org/accel, slots: 4, maxPerContainer: 2, policy: pack, containerPath: /vaccel}
        - {name: vaccel.org/vm, slots: 2, transport: vsock, basePort: 3000}
        - {name: example.com/tcp, slots: 1, transport: tcp, basePort: 4000, nodeIP: 10.0.0.2}
      """)
    #expect(config.logLevel == .debug)
    #expect(config.logFormat == .json && config.metricsAddress == "127.0.0.1:9000")
    #expect(config.kubelet == KubeletConfig(devicePluginDir: "/dp", podResourcesSocket: "/pr.sock", recheckInterval: .seconds(2)))
    #expect(config.resources[0] == ResourceConfig(name: "vaccel.org/accel", slots: 4, maxPerContainer: 2, policy: .pack, containerPath: "/vaccel"))
    #expect(config.resources[1].transport == .vsock && config.resources[1].basePort == 3000)
    #expect(config.resources[2].nodeIP == "10.0.0.2")
  }

  /// libyaml's anchors and aliases, block and flow styles, comments, numbers as YAML writes them.
  @Test func yamlFeaturesResolveAsYAMLSays() throws {
    let config = try load("""
      # comment
      version: v1
      agent:
        args: &args [-a, "{address}", --debug]
      resources:
        - {name: vaccel.org/a, slots: 0x10, warm: 0o2}
        - name: vaccel.org/b
          slots: +3
          agent: {args: *args}
      runDir: ~
      """)
    #expect(config.agent.args == ["-a", "{address}", "--debug"])
    #expect(config.resources.map(\.slots) == [16, 3])
    #expect(config.resources[0].warm == 2)
    #expect(config.resources[1].agent.args == ["-a", "{address}", "--debug"])
    #expect(config.runDir == DaemonConfig().runDir, "a null value is not set")
  }

  @Test func environmentOverridesFileAndFlagsOverrideEnvironment() throws {
    let yaml = "version: v1\nrunDir: /from-file\nstateDir: /state-file\nlogLevel: error\n"
    let env = ["VACCEL_DP_RUN_DIR": "/from-env", "VACCEL_DP_LOG_LEVEL": "debug"]
    let fromEnv = try load(yaml, env: env)
    #expect(fromEnv.runDir == "/from-env")
    #expect(fromEnv.stateDir == "/state-file")
    #expect(fromEnv.logLevel == .debug)

    let fromFlags = try load(yaml, env: env, flags: ConfigOverrides(runDir: "/from-flag", logLevel: "trace"))
    #expect(fromFlags.runDir == "/from-flag")
    #expect(fromFlags.logLevel == .trace)
  }

  @Test func statusSocketFollowsRunDirUnlessSet() throws {
    #expect(try load("version: v1\nrunDir: /run/v\n").statusSocket == "/run/v/device-plugin.sock")
    #expect(DaemonConfig().statusSocket == "/var/run/vaccel/device-plugin.sock")
    let set = try load("version: v1\nstatus: {socket: /run/s.sock, mode: \"0660\", group: 1000}\nk3s: {autoDeployDir: /m}\n")
    #expect(set.statusSocket == "/run/s.sock")
    #expect(set.status.mode == 0o660 && set.status.group == 1000)
    #expect(set.k3sAutoDeployDir == "/m")
    #expect(try load("version: v1\nstatus: {socket: \"\"}\n").statusSocket == "")
    let flagged = try load("version: v1\n", env: [ConfigLoader.Environment.statusSocket: "/env.sock"], flags: ConfigOverrides(statusSocket: "/flag.sock"))
    #expect(flagged.statusSocket == "/flag.sock")
  }

  @Test func configPathFromEnvironment() throws {
    let path = try file("version: v1\nrunDir: /x\n")
    defer { try? FileManager.default.removeItem(atPath: path) }
    let config = try ConfigLoader.load(environment: ["VACCEL_DP_CONFIG": path])
    #expect(config.runDir == "/x")
  }

  @Test func nodeIPFallsBackToTheEnvironment() throws {
    let yaml = "version: v1\nresources: [{name: vaccel.org/tcp, transport: tcp}]\n"
    #expect(try load(yaml, env: ["NODE_IP": "192.0.2.7"]).resources[0].nodeIP == "192.0.2.7")
    try expectError(yaml, field: "resources[0].nodeIP", mentions: "NODE_IP")
  }

  @Test(arguments: [
    ("version: v1\nresources: [", "", "not valid YAML"),
    ("", "", "empty"),
    ("runDir: /x\n", "version", "required"),
    ("version: v2\n", "version", "'v2' is not supported"),
    ("version: v1\nrunDirr: /x\n", "runDirr", "unknown key"),
    ("version: v1\nkubelet: {devicePluginDirectory: /x}\n", "kubelet.devicePluginDirectory", "unknown key"),
    ("version: v1\nresources: [{name: vaccel.org/a, slot: 2}]\n", "resources[0].slot", "unknown key"),
    ("version: v1\nresources: [{name: accel}]\n", "resources[0].name", "<domain>/<name>"),
    ("version: v1\nresources: [{name: kubernetes.io/accel}]\n", "resources[0].name", "reserved"),
    ("version: v1\nresources: [{name: Vaccel.org/accel}]\n", "resources[0].name", "DNS subdomain"),
    ("version: v1\nresources: [{name: vaccel.org/-accel}]\n", "resources[0].name", "starting and ending"),
    ("version: v1\nresources: [{slots: 2}]\n", "resources[0].name", "required"),
    ("version: v1\nresources: [{name: vaccel.org/a, slots: 0}]\n", "resources[0].slots", "out of range"),
    ("version: v1\nresources: [{name: vaccel.org/a, slots: 4097}]\n", "resources[0].slots", "out of range"),
    ("version: v1\nresources: [{name: vaccel.org/a, slots: -1}]\n", "resources[0].slots", "out of range"),
    ("version: v1\nresources: [{name: vaccel.org/a, slots: eight}]\n", "resources[0].slots", "whole number"),
    ("version: v1\nresources: [{name: vaccel.org/a, slots: \u{663}}]\n", "resources[0].slots", "whole number"),  // an Arabic-Indic 3
    ("version: v1\nresources: [{name: vaccel.org/a, slots: +}]\n", "resources[0].slots", "whole number"),
    ("version: v1\nresources: [{name: vaccel.org/a, slots: \"8\"}]\n", "resources[0].slots", "got the quoted string '8'; write 8 without quotes"),
    ("version: v1\nresources: [{name: vaccel.org/a, slots: 99999999999999999999999}]\n", "resources[0].slots", "whole number"),
    ("version: v1\nresources: [{name: vaccel.org/a, slots: [1]}]\n", "resources[0].slots", "whole number"),
    ("version: v1\nresources: [{name: vaccel.org/a, transport: grpc}]\n", "resources[0].transport", "unix, hybrid-vsock, vsock, tcp"),
    ("version: v1\nresources: [{name: vaccel.org/a, transport: hybrid-vsock, warm: 1}]\n", "resources[0].warm", "exists only once the VM runs"),
    ("version: v1\nresources: [{name: vaccel.org/a, transport: hybrid-vsock, maxPerContainer: 2}]\n", "resources[0].maxPerContainer", "one agent per port"),
    ("version: v1\nresources: [{name: vaccel.org/a, transport: hybrid-vsock}, {name: vaccel.org/b, transport: hybrid-vsock}]\n", "resources[1].basePort", "already that of resources[0]"),
    ("version: v1\nresources: [{name: vaccel.org/a, transport: hybrid-vsock, basePort: 0}]\n", "resources[0].basePort", "not a port"),
    ("version: v1\nsandboxes: {vmSockets: [/run/kata/root/kata.hvsock]}\n", "sandboxes.vmSockets[0]", "must contain {id}"),
    ("version: v1\nsandboxes: {vmSockets: []}\n", "sandboxes.vmSockets", "at least one"),
    ("version: v1\nsandboxes: {criSockets: [run/containerd.sock]}\n", "sandboxes.criSockets[0]", "absolute"),
    ("version: v1\nsandboxes:\n  vmSockets: /run/kata/x.sock\n", "sandboxes.vmSockets", "expected a list of strings"),
    ("version: v1\nsandboxes: {lookupTimeout: 1m}\n", "sandboxes.lookupTimeout", "at most 30s"),
    ("version: v1\nsandboxes: {criSocket: /run/x.sock}\n", "sandboxes.criSocket", "unknown key"),
    ("version: v1\nresources: [{name: vaccel.org/a, policy: random}]\n", "resources[0].policy", "spread, pack"),
    ("version: v1\nresources: [{name: vaccel.org/a, slots: 2, maxPerContainer: 3}]\n", "resources[0].maxPerContainer", "out of range"),
    ("version: v1\nresources: [{name: vaccel.org/a}, {name: vaccel.org/a}]\n", "resources[1].name", "already configured"),
    ("version: v1\nresources: [{name: vaccel.org/a}, {name: example.com/a}]\n", "resources[1].name", "differ after the '/'"),
    ("version: v1\nresources: []\n", "resources", "at least one"),
    ("version: v1\nresources: {name: vaccel.org/a}\n", "resources", "expected a list"),
    ("version: v1\nkubelet: /x\n", "kubelet", "expected a mapping"),
    ("version: v1\nrunDir: relative/path\n", "runDir", "absolute"),
    ("version: v1\nrunDir: /a\nrunDir: /b\n", "runDir", "appears twice"),
    ("version: v1\nresources: [{name: vaccel.org/a, slots: 1, slots: 2}]\n", "resources[0].slots", "appears twice"),
    ("version: v1\nagent: &a {binary: /x}\nk3s: *b\n", "", "undefined alias"),
    ("version: v1\n---\nversion: v1\n", "", "single document"),
    ("version: v1\nlogLevel: loud\n", "logLevel", "not one of"),
    ("version: v1\nlogFormat: xml\n", "logFormat", "keyvalue, json"),
    ("version: v1\nmetrics: {address: 9464}\n", "metrics.address", "host:port"),
    ("version: v1\nmetrics: {adress: \"0.0.0.0:9464\"}\n", "metrics.adress", "unknown key"),
    ("version: v1\nstatus: {mode: \"0999\"}\n", "status.mode", "octal"),
    ("version: v1\nstatus: {mode: rw}\n", "status.mode", "octal"),
    ("version: v1\nstatus: {group: -1}\n", "status.group", "group id"),
    ("version: v1\nstatus: {socket: relative.sock}\n", "status.socket", "absolute"),
    ("version: v1\nstatus: {socket: /\(String(repeating: "s", count: 110))}\n", "status.socket", "103"),
    ("version: v1\nstatus: {sockt: /x}\n", "status.sockt", "unknown key"),
    ("version: v1\nk3s: {autoDeployDir: manifests}\n", "k3s.autoDeployDir", "absolute"),
    ("version: v1\nresources: [{name: vaccel.org/a, endpoint: {mode: \"0066\"}}]\n", "resources[0].endpoint.mode", "owner rw"),
    ("version: v1\nresources: [{name: vaccel.org/a, endpoint: {uid: -1}}]\n", "resources[0].endpoint.uid", "user id"),
    ("version: v1\nresources: [{name: vaccel.org/a, endpoint: {gid: x}}]\n", "resources[0].endpoint.gid", "whole number"),
    ("version: v1\nresources: [{name: vaccel.org/a, endpoint: {owner: 1}}]\n", "resources[0].endpoint.owner", "unknown key"),
    ("version: v1\nagent: {liveness: {failures: 0}}\n", "agent.liveness.failures", "out of range"),
    ("version: v1\nagent: {liveness: {interval: often}}\n", "agent.liveness.interval", "duration"),
    ("version: v1\nkubelet: {recheckInterval: soon}\n", "kubelet.recheckInterval", "duration"),
    ("version: v1\nkubelet: {recheckInterval: 500ms}\n", "kubelet.recheckInterval", "at least 1s"),
    ("version: v1\nkubelet: {podResourcesSocket: /\(String(repeating: "p", count: 110))}\n", "kubelet.podResourcesSocket", "103"),
    ("version: v1\nkubelet: {devicePluginDir: /\(String(repeating: "d", count: 95))}\n", "kubelet.devicePluginDir", "103"),
    ("version: v1\nresources: [{name: vaccel.org/\(String(repeating: "n", count: 59)), slots: 4096}]\n", "resources[0].name", "63 characters"),
    ("version: v1\nresources: [{name: vaccel.org/\(String(repeating: "n", count: 60))}]\n", "resources[0].name", "plugin socket"),
    ("version: v1\nrunDir: /\(String(repeating: "r", count: 80))\n", "runDir", "agent socket"),
    ("version: v1\nresources: [{name: vaccel.org/a, transport: vsock, basePort: 65535, slots: 2}]\n", "resources[0].basePort", "65535"),
    ("version: v1\nresources: [{name: vaccel.org/a, transport: vsock, slots: 4}, {name: vaccel.org/b, transport: vsock, basePort: 2050}]\n", "resources[1].basePort", "overlap"),
  ])
  func rejectsBadInput(_ yaml: String, _ field: String, _ mentions: String) throws {
    try expectError(yaml, field: field, mentions: mentions)
  }

  /// A value, a key or a line can be as long as the file. The error still names the field and
  /// keeps its explanation, without quoting the whole thing back.
  @Test(arguments: [
    ("version: \(String(repeating: "v", count: 70_000))\n", "the supported version is 'v1'"),
    ("version: v1\nlogLevel: \(String(repeating: "l", count: 70_000))\n", "is not one of: trace"),
    ("version: v1\n\(String(repeating: "k", count: 500)): 1\n", "unknown key"),
    ("version: v1\n\(String(repeating: "k", count: 70_000)): 1\n", "could not find expected ':'"),
    ("version: v1\nagent: \(String(repeating: "{a: ", count: 5_000))\n", "Maximum nesting level"),
    // A billion laughs: ten aliases of ten aliases of ... of ten scalars.
    ("version: v1\nl0: &l0 [\(Array(repeating: "x", count: 10).joined(separator: ", "))]\n"
      + (1...8).map { "l\($0): &l\($0) [\(Array(repeating: "*l\($0 - 1)", count: 10).joined(separator: ", "))]" }.joined(separator: "\n") + "\n",
      "aliases are expanded"),
  ])
  func hugeInputGivesAShortError(_ yaml: String, _ explanation: String) throws {
    do {
      _ = try ConfigLoader.load(yaml: yaml, source: "huge.yaml")
      Issue.record("expected an error")
    } catch {
      let lines = error.description.split(separator: "\n")
      #expect(error.description.contains(explanation), "\(error)")
      #expect(lines.allSatisfy { $0.count <= ConfigError.maxLineLength }, "\(lines.map(\.count))")
      #expect(error.description.count < 1_000)
    }
  }

  /// A YAML error quotes a window of its line, and the caret still sits under the column
  /// libyaml named (counted in Unicode scalars), wherever on a long line that is.
  @Test func yamlExcerptsKeepTheCaretOnTheColumn() {
    let line = String(String.UnicodeScalarView((0..<300).map { Unicode.Scalar(0x4E00 + $0)! }))
    let yaml = "first: line\n" + line + "\nlast: line\n"
    for column in 1...300 {
      let excerpt = YAMLErrorText.excerpt(of: yaml, line: 2, column: column).split(separator: "\n").map { Array($0.unicodeScalars) }
      guard excerpt.count == 2, let caret = excerpt[1].firstIndex(of: "^") else {
        Issue.record("column \(column): no caret in \(excerpt)")
        continue
      }
      #expect(excerpt[0][caret] == Unicode.Scalar(0x4E00 + column - 1)!, "column \(column)")
      #expect(excerpt[0].count <= YAMLErrorText.window + 2)
    }
    #expect(YAMLErrorText.excerpt(of: yaml, line: 3, column: 1) == "last: line\n^")
    #expect(YAMLErrorText.excerpt(of: yaml, line: 9, column: 1) == "")
  }

  @Test func badOverridesNameTheirSource() throws {
    do {
      _ = try ConfigLoader.load(environment: ["VACCEL_DP_RUN_DIR": "relative"])
      Issue.record("expected an error")
    } catch {
      #expect(error.source == "environment VACCEL_DP_RUN_DIR" && error.field == "runDir")
    }
    do {
      _ = try ConfigLoader.load(flags: ConfigOverrides(logLevel: "shouty"))
      Issue.record("expected an error")
    } catch {
      #expect(error.source == "flag --log-level" && error.field == "logLevel")
    }
  }

  @Test func unreadableFilesAreErrorsNotCrashes() throws {
    #expect(throws: ConfigError.self) { try ConfigLoader.load(flags: ConfigOverrides(configPath: "/nonexistent/config.yaml")) }
    let binary = NSTemporaryDirectory() + "vdp-binary-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: binary) }
    try Data([0xFF, 0xFE, 0x00, 0x80]).write(to: URL(fileURLWithPath: binary))
    #expect(throws: ConfigError.self) { try ConfigLoader.load(flags: ConfigOverrides(configPath: binary)) }
    let huge = NSTemporaryDirectory() + "vdp-huge-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: huge) }
    try Data(repeating: 0x20, count: ConfigLoader.maxFileBytes + 1).write(to: URL(fileURLWithPath: huge))
    #expect(throws: ConfigError.self) { try ConfigLoader.load(flags: ConfigOverrides(configPath: huge)) }
  }
}
