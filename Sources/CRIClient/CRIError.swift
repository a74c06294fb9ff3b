/// What went wrong asking the container runtime (CRI) about sandboxes.
public enum CRIError: Error, Equatable, CustomStringConvertible {
  /// None of the configured CRI sockets exists.
  case noRuntime(tried: [String])
  /// The runtime at `socket` did not answer as it should.
  case call(socket: String, reason: String)

  public var description: String {
    switch self {
    case .noRuntime(let tried):
      "no container runtime socket found (tried \(tried.joined(separator: ", ")); set sandboxes.criSockets"
    case .call(let socket, let reason):
      "the container runtime at \(socket) did not list sandboxes: \(reason)"
    }
  }
}
