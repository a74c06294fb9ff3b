/// The container holding a slot, as pod-resources names it (it gives no pod UID).
public struct Holder: Sendable, Equatable, Hashable, Codable, CustomStringConvertible {
  public var namespace: String
  public var pod: String
  public var container: String

  public init(namespace: String, pod: String, container: String) {
    self.namespace = namespace
    self.pod = pod
    self.container = container
  }

  public var description: String { "\(namespace)/\(pod)/\(container)" }
}
