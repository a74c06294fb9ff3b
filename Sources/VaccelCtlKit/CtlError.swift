/// Every failure `vaccelctl` reports: one line for the operator, and the exit code it maps to.
public enum CtlError: Error, Equatable, CustomStringConvertible {
  /// The daemon could not be asked at all.
  case unreachable(socket: String, reason: String)
  /// The daemon refused the question (an unknown resource, say).
  case badRequest(String)
  /// Bad flags or files given to vaccelctl.
  case usage(String)
  /// Something vaccelctl itself tried failed (writing a file, starting the demo).
  case failed(String)

  public var description: String {
    switch self {
    case .unreachable(let socket, let reason):
      "cannot reach the vaccel-device-plugin status API at \(socket): \(reason). "
        + "Check that the daemon runs on this node (kubectl -n vaccel-system get pods -o wide "
        + "-l app.kubernetes.io/name=vaccel-device-plugin) and that you may open the socket; "
        + "--socket or $\(StatusClient.socketEnvironment) picks another path"
    case .badRequest(let message): message
    case .usage(let message): message
    case .failed(let message): message
    }
  }

  /// 1: the thing asked about is not well (or not reachable); 2: the question was wrong.
  public var exitCode: Int32 {
    switch self {
    case .unreachable, .failed: 1
    case .badRequest, .usage: 2
    }
  }
}
