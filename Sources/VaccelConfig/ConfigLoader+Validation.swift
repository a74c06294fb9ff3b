extension ConfigLoader {
  static let slotRange = 1...4096
  static let socketName = "vaccel.sock"

  /// Every cross-field rule lives here, so a bad config fails at start, naming the field.
  static func validate(_ layered: Layered) throws(ConfigError) {
    let config = layered.config
    func fail(_ field: String, _ problem: String) -> ConfigError {
      let top = field.hasPrefix("resources") ? "resources" : field
      return ConfigError(source: layered.source(of: top), field: field, problem: problem)
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
    guard config.kubelet.recheckInterval >= .milliseconds(100) else {
      throw fail("kubelet.recheckInterval", "must be at least 100ms")
    }
    try requireAbsolute("runDir", config.runDir)
    try requireAbsolute("stateDir", config.stateDir)

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

      switch resource.transport {
      case .unix:
        let agentSocket = config.runDir.joiningPath(resource.slug).joiningPath(lastID).joiningPath(socketName)
        try requireSocketLength("runDir", agentSocket, what: "the agent socket")
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
