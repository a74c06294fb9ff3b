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
  /// Stopped by Ctrl-C or SIGTERM, after cleaning up.
  case interrupted

  public var description: String {
    switch self {
    case .unreachable(let socket, let reason):
      "cannot reach the daemon's status socket \(socket): \(reason)\n"
        + "  is the daemon running here, and may you open it? --socket, --config or $\(StatusClient.socketEnvironment) pick another"
    case .badRequest(let message): message
    case .usage(let message): message
    case .failed(let message): message
    case .interrupted: "interrupted"
    }
  }

  /// 1: the thing asked about is not well (or not reachable); 2: the question was wrong.
  public var exitCode: Int32 {
    switch self {
    case .unreachable, .failed: 1
    case .badRequest, .usage: 2
    case .interrupted: 130  // 128 + SIGINT, as a shell reports Ctrl-C
    }
  }
}
