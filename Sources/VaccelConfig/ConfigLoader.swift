#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
#if canImport(Glibc)
import Glibc
#endif
import DaemonLogging
import VaccelYAML

/// Values given on the command line; nil means "not given".
public struct ConfigOverrides: Sendable, Equatable {
  public var configPath: String?
  public var devicePluginDir: String?
  public var podResourcesSocket: String?
  public var runDir: String?
  public var stateDir: String?
  public var logLevel: String?
  public var logFormat: String?
  public var metricsAddress: String?
  public var statusSocket: String?

  public init(
    configPath: String? = nil, devicePluginDir: String? = nil, podResourcesSocket: String? = nil,
    runDir: String? = nil, stateDir: String? = nil, logLevel: String? = nil, logFormat: String? = nil,
    metricsAddress: String? = nil, statusSocket: String? = nil
  ) {
    self.configPath = configPath
    self.devicePluginDir = devicePluginDir
    self.podResourcesSocket = podResourcesSocket
    self.runDir = runDir
    self.stateDir = stateDir
    self.logLevel = logLevel
    self.logFormat = logFormat
    self.metricsAddress = metricsAddress
    self.statusSocket = statusSocket
  }
}

/// Builds the configuration from defaults < file < environment < flags and validates it.
public enum ConfigLoader {
  /// The environment variables read, beside `NODE_IP` (the tcp endpoint address).
  public enum Environment {
    public static let config = "VACCEL_DP_CONFIG"
    public static let devicePluginDir = "VACCEL_DP_DEVICE_PLUGIN_DIR"
    public static let podResourcesSocket = "VACCEL_DP_POD_RESOURCES_SOCKET"
    public static let runDir = "VACCEL_DP_RUN_DIR"
    public static let stateDir = "VACCEL_DP_STATE_DIR"
    public static let logLevel = "VACCEL_DP_LOG_LEVEL"
    public static let metricsAddress = "VACCEL_DP_METRICS_ADDRESS"
    public static let logFormat = "VACCEL_DP_LOG_FORMAT"
    public static let statusSocket = "VACCEL_DP_STATUS_SOCKET"
    public static let nodeIP = "NODE_IP"
  }

  public static let maxFileBytes = 1 << 20

  public static func load(
    flags: ConfigOverrides = ConfigOverrides(),
    environment: [String: String] = [:]
  ) throws(ConfigError) -> DaemonConfig {
    var layered = Layered()
    let path = flags.configPath ?? environment[Environment.config]
    if let path {
      layered = try parse(yaml: try readFile(path), source: path)
    }
    let env = ConfigOverrides(
      devicePluginDir: environment[Environment.devicePluginDir],
      podResourcesSocket: environment[Environment.podResourcesSocket],
      runDir: environment[Environment.runDir],
      stateDir: environment[Environment.stateDir],
      logLevel: environment[Environment.logLevel],
      logFormat: environment[Environment.logFormat],
      metricsAddress: environment[Environment.metricsAddress],
      statusSocket: environment[Environment.statusSocket]
    )
    try layered.apply(env) { "environment \(envName(for: $0))" }
    try layered.apply(flags) { "flag --\(flagName(for: $0))" }
    for index in layered.config.resources.indices
    where layered.config.resources[index].transport == .tcp && layered.config.resources[index].nodeIP == nil {
      layered.config.resources[index].nodeIP = environment[Environment.nodeIP]
    }
    try validate(layered)
    return layered.config
  }

  /// A config document on its own (no environment, no flags), validated as the daemon would:
  /// for tools that render or check a config meant for another machine.
  public static func load(yaml: String, source: String) throws(ConfigError) -> DaemonConfig {
    let layered = try parse(yaml: yaml, source: source)
    try validate(layered)
    return layered.config
  }

  /// Parses a config document (without applying overrides or validating cross-field rules).
  static func parse(yaml: String, source: String) throws(ConfigError) -> Layered {
    let node: YAMLNode?
    do {
      node = try YAMLComposer.compose(yaml)
    } catch {
      throw ConfigError(source: source, field: "", problem: "not valid YAML: \(YAMLErrorText.describe(error, in: yaml))")
    }
    guard let node else {
      throw ConfigError(source: source, field: "", problem: "the file is empty; it needs at least 'version: v1'")
    }
    var root = try YAMLReader(node, source: source, path: "")
    guard let version = try root.string("version") else {
      throw root.error("version", "required; the supported version is '\(DaemonConfig.currentVersion)'")
    }
    guard version == DaemonConfig.currentVersion else {
      throw root.error("version", "'\(version)' is not supported; the supported version is '\(DaemonConfig.currentVersion)'")
    }

    var layered = Layered()
    var config = DaemonConfig()
    func mark(_ field: String) { layered.origin[field] = source }

    if let level = try root.string("logLevel") {
      config.logLevel = try parseLogLevel(level) { root.error("logLevel", $0) }
      mark("logLevel")
    }
    if var kubelet = try root.mapping("kubelet") {
      if let value = try kubelet.string("devicePluginDir") { config.kubelet.devicePluginDir = value; mark("kubelet.devicePluginDir") }
      if let value = try kubelet.string("podResourcesSocket") { config.kubelet.podResourcesSocket = value; mark("kubelet.podResourcesSocket") }
      if let value = try kubelet.duration("recheckInterval") { config.kubelet.recheckInterval = value; mark("kubelet.recheckInterval") }
      if let value = try kubelet.duration("podResourcesInterval") { config.kubelet.podResourcesInterval = value; mark("kubelet.podResourcesInterval") }
      if let value = try kubelet.duration("allocationGrace") { config.kubelet.allocationGrace = value; mark("kubelet.allocationGrace") }
      try kubelet.rejectUnknownKeys()
    }
    if let format = try root.choice("logFormat", as: LogFormat.self) { config.logFormat = format; mark("logFormat") }
    if var metrics = try root.mapping("metrics") {
      if let value = try metrics.string("address") { config.metricsAddress = value; mark("metrics.address") }
      try metrics.rejectUnknownKeys()
    }
    if var status = try root.mapping("status") {
      if let value = try status.string("socket") { config.status.socket = value; mark("status.socket") }
      if let text = try status.string("mode") {
        guard let mode = parseMode(text) else {
          throw status.error(status.child("mode"), "'\(text)' is not an octal permission such as \"0600\" or \"0660\"")
        }
        config.status.mode = mode
        mark("status.mode")
      }
      if let value = try status.int("group") {
        guard (0...Int(Int32.max)).contains(value) else {
          throw status.error(status.child("group"), "\(value) is not a numeric group id")
        }
        config.status.group = UInt32(value)
        mark("status.group")
      }
      try status.rejectUnknownKeys()
    }
    if var k3s = try root.mapping("k3s") {
      if let value = try k3s.string("autoDeployDir") { config.k3sAutoDeployDir = value; mark("k3s.autoDeployDir") }
      try k3s.rejectUnknownKeys()
    }
    if var sandboxes = try root.mapping("sandboxes") {
      if let value = try sandboxes.stringList("criSockets") { config.sandboxes.criSockets = value; mark("sandboxes.criSockets") }
      if let value = try sandboxes.stringList("vmSockets") { config.sandboxes.vmSockets = value; mark("sandboxes.vmSockets") }
      if let value = try sandboxes.duration("lookupTimeout") { config.sandboxes.lookupTimeout = value; mark("sandboxes.lookupTimeout") }
      try sandboxes.rejectUnknownKeys()
    }
    if var host = try root.mapping("agentHost") {
      if let value = try host.string("socket") {
        guard value.isEmpty || (value.hasPrefix("/") && value.utf8.count <= 103) else {
          throw host.error(host.child("socket"), "'\(value)' is not an absolute socket path of at most 103 bytes (empty: agents are the daemon's own)")
        }
        config.agentHostSocket = value
        mark("agentHost.socket")
      }
      try host.rejectUnknownKeys()
    }
    if let value = try root.string("runDir") { config.runDir = value; mark("runDir") }
    if let value = try root.string("stateDir") { config.stateDir = value; mark("stateDir") }
    if var agent = try root.mapping("agent") {
      config.agent = try parseAgent(&agent, base: config.agent)
      mark("agent")
    }
    config.resources = config.resources.map { resource in
      var resource = resource
      resource.agent = config.agent
      return resource
    }
    if let list = try root.sequence("resources") {
      config.resources = []
      for var entry in list {
        config.resources.append(try parseResource(&entry, agent: config.agent))
      }
      mark("resources")
    }
    try root.rejectUnknownKeys()
    layered.config = config
    return layered
  }

  private static func parseResource(_ entry: inout YAMLReader, agent: AgentConfig) throws(ConfigError) -> ResourceConfig {
    var resource = ResourceConfig(agent: agent)
    guard let name = try entry.string("name") else {
      throw entry.error(entry.child("name"), "required, e.g. vaccel.org/accel")
    }
    resource.name = name
    if let value = try entry.int("slots") { resource.slots = value }
    if let value = try entry.choice("transport", as: AgentTransport.self) { resource.transport = value }
    if let value = try entry.int("maxPerContainer") { resource.maxPerContainer = value }
    if let value = try entry.choice("policy", as: AllocationPolicy.self) { resource.policy = value }
    if let value = try entry.string("containerPath") { resource.containerPath = value }
    if let value = try entry.int("basePort") { resource.basePort = value }
    if let value = try entry.string("nodeIP") { resource.nodeIP = value }
    if let value = try entry.choice("agents", as: AgentManagement.self) { resource.agents = value }
    if let value = try entry.int("warm") { resource.warm = value }
    if var endpoint = try entry.mapping("endpoint") {
      if let value = try endpoint.int("uid") {
        guard (0...Int(Int32.max)).contains(value) else { throw endpoint.error(endpoint.child("uid"), "\(value) is not a numeric user id") }
        resource.endpoint.uid = UInt32(value)
      }
      if let value = try endpoint.int("gid") {
        guard (0...Int(Int32.max)).contains(value) else { throw endpoint.error(endpoint.child("gid"), "\(value) is not a numeric group id") }
        resource.endpoint.gid = UInt32(value)
      }
      if let text = try endpoint.string("mode") {
        guard let mode = parseMode(text), mode & 0o600 == 0o600 else {
          throw endpoint.error(endpoint.child("mode"), "'\(text)' is not an octal socket mode with owner rw, such as \"0660\"")
        }
        resource.endpoint.mode = mode
      }
      try endpoint.rejectUnknownKeys()
    }
    var probeSet = false
    if var overrides = try entry.mapping("agent") {
      probeSet = overrides.keys.contains("probe")
      resource.agent = try parseAgent(&overrides, base: agent)
    }
    // Probing over vsock needs the host's vsock loopback, which many hosts lack: unless asked
    // for, a vsock agent counts as ready when its process runs.
    if resource.transport == .vsock && !probeSet {
      resource.agent.probe = .process
    }
    try entry.rejectUnknownKeys()
    return resource
  }

  private static func parseAgent(_ reader: inout YAMLReader, base: AgentConfig) throws(ConfigError) -> AgentConfig {
    var agent = base
    if let value = try reader.string("binary") { agent.binary = value }
    if let value = try reader.words("args") { agent.args = value }
    if let value = try reader.words("plugins") { agent.plugins = value }
    if let value = try reader.string("libraryPath") { agent.libraryPath = value }
    if let value = try reader.int("logLevel") { agent.logLevel = value }
    if let value = try reader.stringMap("env") { agent.env.merge(value) { $1 } }
    if let value = try reader.choice("probe", as: ProbeMode.self) { agent.probe = value }
    if let value = try reader.duration("probeTimeout") { agent.probeTimeout = value }
    if let value = try reader.duration("readyTimeout") { agent.readyTimeout = value }
    if let value = try reader.duration("stopGracePeriod") { agent.stopGracePeriod = value }
    if var backoff = try reader.mapping("restartBackoff") {
      if let value = try backoff.duration("initial") { agent.restartBackoffInitial = value }
      if let value = try backoff.duration("max") { agent.restartBackoffMax = value }
      if let value = try backoff.duration("resetAfter") { agent.restartBackoffReset = value }
      try backoff.rejectUnknownKeys()
    }
    if let value = try reader.int("logMaxBytes") { agent.logMaxBytes = value }
    if let value = try reader.choice("forwardLogs", as: AgentLogForwarding.self) { agent.forwardLogs = value }
    if let value = try reader.int("vsockListenCID") { agent.vsockListenCID = Int64(value) }
    if let value = try reader.duration("nodeCheckInterval") { agent.nodeCheckInterval = value }
    if var liveness = try reader.mapping("liveness") {
      if let value = try liveness.duration("interval") { agent.livenessInterval = value }
      if let value = try liveness.int("failures") { agent.livenessFailures = value }
      try liveness.rejectUnknownKeys()
    }
    try reader.rejectUnknownKeys()
    return agent
  }

  /// "0660" or "660": permission bits only.
  static func parseMode(_ text: String) -> UInt32? {
    guard (3...4).contains(text.count), let mode = UInt32(text, radix: 8), mode <= 0o777 else { return nil }
    return mode
  }

  private static func parseLogLevel(_ text: String, error: (String) -> ConfigError) throws(ConfigError) -> Logger.Level {
    guard let level = Logger.Level(rawValue: text.lowercased()) else {
      let allowed = Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")
      throw error("'\(text)' is not one of: \(allowed)")
    }
    return level
  }

  /// The text of a config file, or an error that says what is wrong with the path: missing,
  /// a folder, unreadable, too large, not UTF-8. The daemon, `vaccelctl manifests` and
  /// `vaccelctl doctor` all read configs through this, so they say the same thing.
  public static func readFile(_ path: String) throws(ConfigError) -> String {
    func fail(_ problem: String) -> ConfigError { ConfigError(source: path, field: "", problem: problem) }
    var info = stat()
    guard stat(path, &info) == 0 else {
      throw fail(errno == ENOENT ? "no such file" : "cannot read it: \(String(cString: strerror(errno)))")
    }
    guard info.st_mode & S_IFMT != S_IFDIR else { throw fail("is a folder, not a config file") }
    guard info.st_mode & S_IFMT == S_IFREG else { throw fail("is not a regular file") }
    guard info.st_size <= maxFileBytes else {
      throw fail("the file is \(info.st_size) bytes; a config is at most \(maxFileBytes)")
    }
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw fail("cannot read it: \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    // Read in small pieces, not into a buffer of the largest size allowed: a zeroed 1 MiB
    // buffer was written whole for a config of a few hundred bytes, and freeing it raised
    // glibc's mmap threshold to 1 MiB, so the daemon's later large allocations came from the
    // heap, which then kept its pages (issue 14).
    var bytes: [UInt8] = []
    bytes.reserveCapacity(Int(min(info.st_size, off_t(maxFileBytes))) + 1)
    var piece = [UInt8](repeating: 0, count: 16 * 1024)
    while bytes.count <= maxFileBytes {
      let got = piece.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
      if got < 0 && errno == EINTR { continue }
      guard got >= 0 else { throw fail("cannot read it: \(String(cString: strerror(errno)))") }
      if got == 0 { break }
      bytes.append(contentsOf: piece[0..<got])
    }
    guard bytes.count <= maxFileBytes else {
      throw fail("the file is over \(maxFileBytes) bytes; a config is at most \(maxFileBytes)")
    }
    guard let text = String(validating: bytes, as: UTF8.self) else {
      throw fail("the file is not UTF-8 text")
    }
    return text
  }

  private static func envName(for field: String) -> String {
    switch field {
    case "kubelet.devicePluginDir": Environment.devicePluginDir
    case "kubelet.podResourcesSocket": Environment.podResourcesSocket
    case "runDir": Environment.runDir
    case "stateDir": Environment.stateDir
    case "metrics.address": Environment.metricsAddress
    case "logFormat": Environment.logFormat
    case "status.socket": Environment.statusSocket
    default: Environment.logLevel
    }
  }

  private static func flagName(for field: String) -> String {
    switch field {
    case "kubelet.devicePluginDir": "device-plugin-dir"
    case "kubelet.podResourcesSocket": "pod-resources-socket"
    case "runDir": "run-dir"
    case "stateDir": "state-dir"
    case "metrics.address": "metrics-address"
    case "logFormat": "log-format"
    case "status.socket": "status-socket"
    default: "log-level"
    }
  }

  /// A configuration plus where each top-level field came from, for error messages.
  struct Layered {
    var config = DaemonConfig()
    var origin: [String: String] = [:]

    func source(of field: String) -> String { origin[field] ?? "defaults" }

    mutating func apply(_ overrides: ConfigOverrides, source: (String) -> String) throws(ConfigError) {
      func set(_ field: String, _ value: String?, _ assign: (inout DaemonConfig, String) -> Void) {
        guard let value else { return }
        assign(&config, value)
        origin[field] = source(field)
      }
      set("kubelet.devicePluginDir", overrides.devicePluginDir) { $0.kubelet.devicePluginDir = $1 }
      set("kubelet.podResourcesSocket", overrides.podResourcesSocket) { $0.kubelet.podResourcesSocket = $1 }
      set("runDir", overrides.runDir) { $0.runDir = $1 }
      set("stateDir", overrides.stateDir) { $0.stateDir = $1 }
      set("metrics.address", overrides.metricsAddress) { $0.metricsAddress = $1 }
      set("status.socket", overrides.statusSocket) { $0.status.socket = $1 }
      if let format = overrides.logFormat {
        let origin = source("logFormat")
        guard let parsed = LogFormat(rawValue: format.lowercased()) else {
          throw ConfigError(source: origin, field: "logFormat", problem: "'\(format)' is not one of: keyvalue, json")
        }
        config.logFormat = parsed
        self.origin["logFormat"] = origin
      }
      if let level = overrides.logLevel {
        let origin = source("logLevel")
        config.logLevel = try ConfigLoader.parseLogLevel(level) {
          ConfigError(source: origin, field: "logLevel", problem: $0)
        }
        self.origin["logLevel"] = origin
      }
    }
  }
}
