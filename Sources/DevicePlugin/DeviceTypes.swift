/// One advertised device as the kubelet sees it.
public struct DeviceStatus: Sendable, Equatable {
  public var id: String
  public var healthy: Bool

  public init(id: String, healthy: Bool) {
    self.id = id
    self.healthy = healthy
  }
}

/// A host folder mounted into the container.
public struct MountSpec: Sendable, Equatable {
  public var containerPath: String
  public var hostPath: String
  public var readOnly: Bool

  public init(containerPath: String, hostPath: String, readOnly: Bool = false) {
    self.containerPath = containerPath
    self.hostPath = hostPath
    self.readOnly = readOnly
  }
}

/// What one container receives for the devices it was allocated.
public struct ContainerAllocation: Sendable, Equatable {
  public var envs: [String: String]
  public var mounts: [MountSpec]
  public var annotations: [String: String]

  public init(envs: [String: String] = [:], mounts: [MountSpec] = [], annotations: [String: String] = [:]) {
    self.envs = envs
    self.mounts = mounts
    self.annotations = annotations
  }
}

/// One container's entry in a `GetPreferredAllocation` request.
public struct PreferenceRequest: Sendable, Equatable {
  public var available: [String]
  public var mustInclude: [String]
  public var size: Int

  public init(available: [String], mustInclude: [String] = [], size: Int) {
    self.available = available
    self.mustInclude = mustInclude
    self.size = size
  }
}
