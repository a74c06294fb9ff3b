import NodeSupport

extension ConfigLoader {
  static let slotRange = 1...4096

  static func validate(
    _ agent: AgentConfig, field: String, fail: (String, String) -> ConfigError
  ) throws(ConfigError) {
    guard !agent.binary.isEmpty else { throw fail("\(field).binary", "must not be empty") }
    guard agent.args.contains(where: { $0.includes(AgentConfig.addressPlaceholder) }) else {
      throw fail("\(field).args", "must contain \(AgentConfig.addressPlaceholder), where the slot's address goes")
    }
    if let bad = agent.plugins.first(where: { $0.isEmpty || $0.utf8.contains(UInt8(ascii: ":")) }) {
      throw fail("\(field).plugins", "'\(bad)' is not a plugin file name or path")
    }
    if let level = agent.logLevel, !(1...4).contains(level) {
      throw fail("\(field).logLevel", "\(level) is out of range; vAccel log levels are 1 to 4")
    }
    let positive: [(String, Duration)] = [
      ("probeTimeout", agent.probeTimeout), ("readyTimeout", agent.readyTimeout),
      ("restartBackoff.initial", agent.restartBackoffInitial), ("restartBackoff.resetAfter", agent.restartBackoffReset),
    ]
    if let (name, _) = positive.first(where: { $0.1 <= .zero }) {
      throw fail("\(field).\(name)", "must be longer than 0")
    }
    guard agent.restartBackoffMax >= agent.restartBackoffInitial else {
      throw fail("\(field).restartBackoff.max", "must not be shorter than restartBackoff.initial")
    }
    guard agent.logMaxBytes >= 4096 else { throw fail("\(field).logMaxBytes", "must be at least 4096") }
    guard agent.livenessInterval >= .zero else { throw fail("\(field).liveness.interval", "must not be negative (0s turns it off)") }
    guard (1...100).contains(agent.livenessFailures) else {
      throw fail("\(field).liveness.failures", "\(agent.livenessFailures) is out of range; use 1 to 100")
    }
    guard agent.nodeCheckInterval >= .seconds(1) else {
      throw fail("\(field).nodeCheckInterval", "must be at least 1s")
    }
  }

  static func validate(_ sandboxes: SandboxConfig, fail: (String, String) -> ConfigError) throws(ConfigError) {
    guard !sandboxes.criSockets.isEmpty else { throw fail("sandboxes.criSockets", "must name at least one socket") }
    for (index, path) in sandboxes.criSockets.enumerated() where !path.hasPrefix("/") {
      throw fail("sandboxes.criSockets[\(index)]", "'\(path)' must be an absolute path")
    }
    guard !sandboxes.vmSockets.isEmpty else { throw fail("sandboxes.vmSockets", "must name at least one path template") }
    for (index, template) in sandboxes.vmSockets.enumerated() {
      guard template.hasPrefix("/") else { throw fail("sandboxes.vmSockets[\(index)]", "'\(template)' must be an absolute path") }
      guard template.includes(SandboxConfig.idPlaceholder) else {
        throw fail("sandboxes.vmSockets[\(index)]", "'\(template)' must contain \(SandboxConfig.idPlaceholder), where the sandbox id goes")
      }
    }
    guard sandboxes.lookupTimeout > .zero, sandboxes.lookupTimeout <= .seconds(30) else {
      throw fail("sandboxes.lookupTimeout", "must be longer than 0 and at most 30s (the kubelet's PreStartContainer timeout)")
    }
  }

  /// Every cross-field rule lives here, so a bad config fails at start, naming the field.
  static func validate(_ layered: Layered) throws(ConfigError) {
    let config = layered.config
    func fail(_ field: String, _ problem: String) -> ConfigError {
      let top = String(field.prefix { $0 != "." && $0 != "[" })
      let source = layered.origin[field] ?? layered.origin[top] ?? "defaults"
      return ConfigError(source: source, field: field, problem: problem)
    }
    func requireAbsolute(_ field: String, _ path: String) throws(ConfigError) {
      guard path.hasPrefix("/") else { throw fail(field, "'\(path)' must be an absolute path") }
    }
    func requireSocketLength(_ field: String, _ path: String, what: String) throws(ConfigError) {
      let bytes = path.utf8.count
      guard bytes <= 103 else {
        throw fail(field, "\(what) '\(path)' would be \(bytes) bytes; unix socket paths are limited to 103")
      }
    }

    try requireAbsolute("kubelet.devicePluginDir", config.kubelet.devicePluginDir)
    try requireSocketLength("kubelet.devicePluginDir", config.kubelet.registrationSocket, what: "the kubelet socket")
    try requireAbsolute("kubelet.podResourcesSocket", config.kubelet.podResourcesSocket)
    try requireSocketLength("kubelet.podResourcesSocket", config.kubelet.podResourcesSocket, what: "the socket")
    guard config.kubelet.recheckInterval >= .seconds(1) else {
      throw fail("kubelet.recheckInterval", "must be at least 1s (it is a safety net behind inotify)")
    }
    guard config.kubelet.podResourcesInterval >= .seconds(1) else {
      throw fail("kubelet.podResourcesInterval", "must be at least 1s (the kubelet rate-limits pod-resources)")
    }
    try requireAbsolute("runDir", config.runDir)
    try requireAbsolute("stateDir", config.stateDir)
    if !config.metricsAddress.isEmpty {
      guard config.metricsAddress.utf8.contains(UInt8(ascii: ":")), let port = config.metricsPort, (0...65535).contains(port) else {
        throw fail("metrics.address", "'\(config.metricsAddress)' is not host:port, :port, or empty (off)")
      }
    }
    if !config.statusSocket.isEmpty {
      let field = config.status.socket == nil ? "runDir" : "status.socket"
      try requireAbsolute(field, config.statusSocket)
      try requireSocketLength(field, config.statusSocket, what: "the status socket")
    }
    if !config.k3sAutoDeployDir.isEmpty {
      try requireAbsolute("k3s.autoDeployDir", config.k3sAutoDeployDir)
    }
    try validate(config.agent, field: "agent", fail: fail)
    try validate(config.sandboxes, fail: fail)

    guard !config.resources.isEmpty else { throw fail("resources", "at least one resource is required") }
    var names: [String: Int] = [:]
    var slugs: [String: Int] = [:]
    for (index, resource) in config.resources.enumerated() {
      let field = "resources[\(index)]"
      if let problem = ResourceName.problem(with: resource.name) {
        throw fail("\(field).name", problem)
      }
      if let other = names.updateValue(index, forKey: resource.name) {
        throw fail("\(field).name", "'\(resource.name)' is already configured as resources[\(other)]")
      }
      if let other = slugs.updateValue(index, forKey: resource.slug) {
        throw fail(
          "\(field).name",
          "'\(resource.name)' would share its socket and device IDs with resources[\(other)] "
            + "('\(config.resources[other].name)'): the names must differ after the '/'")
      }
      guard slotRange.contains(resource.slots) else {
        throw fail("\(field).slots", "\(resource.slots) is out of range; use \(slotRange.lowerBound) to \(slotRange.upperBound)")
      }
      guard (1...resource.slots).contains(resource.maxPerContainer) else {
        throw fail("\(field).maxPerContainer", "\(resource.maxPerContainer) is out of range; use 1 to slots (\(resource.slots))")
      }
      let lastID = resource.deviceID(slot: resource.slots - 1)
      guard lastID.count <= 63 else {
        throw fail("\(field).name", "device IDs such as '\(lastID)' would exceed the kubelet's 63 characters; shorten the name")
      }
      try requireSocketLength(
        "\(field).name", config.kubelet.devicePluginDir.joiningPath(resource.endpointFileName),
        what: "the plugin socket")
      try requireAbsolute("\(field).containerPath", resource.containerPath)
      guard (0...resource.slots).contains(resource.warm) else {
        throw fail("\(field).warm", "\(resource.warm) is out of range; use 0 to slots (\(resource.slots))")
      }
      if resource.agents == .managed {
        try validate(resource.agent, field: "\(field).agent", fail: fail)
      }

      switch resource.transport {
      case .unix:
        // The longest: the last slot's folder, an allocation folder in it, the socket.
        let agentSocket = EndpointLayout.slotFolder(runDir: config.runDir, resource: resource, slot: resource.slots - 1)
          .joiningPath(String(repeating: "f", count: EndpointLayout.allocationLength)).joiningPath(EndpointLayout.socketName)
        try requireSocketLength("runDir", agentSocket, what: "the agent socket")
      case .hybridVsock:
        guard (1...65535).contains(resource.basePort) else {
          throw fail("\(field).basePort", "\(resource.basePort) is not a port in 1…65535")
        }
        guard resource.warm == 0 else {
          throw fail("\(field).warm", "must be 0 for transport hybrid-vsock: a pod's agent listens on its VM's socket, which exists only once the VM runs")
        }
        guard resource.maxPerContainer == 1 else {
          throw fail("\(field).maxPerContainer", "must be 1 for transport hybrid-vsock: one VM has one agent per port")
        }
        for (otherIndex, other) in config.resources.enumerated().prefix(index)
        where other.transport == .hybridVsock && other.basePort == resource.basePort {
          throw fail("\(field).basePort", "port \(resource.basePort) is already that of resources[\(otherIndex)]; each hybrid-vsock resource needs its own")
        }
      case .vsock, .tcp:
        let last = resource.basePort + resource.slots - 1
        guard resource.basePort >= 1, last <= 65535 else {
          throw fail("\(field).basePort", "ports \(resource.basePort)…\(last) do not fit in 1…65535")
        }
        for (otherIndex, other) in config.resources.enumerated().prefix(index)
        where other.transport == resource.transport {
          let overlap = resource.basePort <= other.basePort + other.slots - 1 && other.basePort <= last
          if overlap {
            throw fail("\(field).basePort", "ports \(resource.basePort)…\(last) overlap those of resources[\(otherIndex)]")
          }
        }
        if resource.transport == .tcp && (resource.nodeIP ?? "").isEmpty {
          throw fail("\(field).nodeIP", "required for transport tcp (or set \(Environment.nodeIP))")
        }
      }
    }
  }
}
