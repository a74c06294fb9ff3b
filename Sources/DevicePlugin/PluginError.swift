public import GRPCCore

/// What went wrong in the plugin layer; mapped once to gRPC status codes at the service seam.
public enum PluginError: Error, Equatable, Sendable, CustomStringConvertible {
  /// The kubelet (or whoever calls) sent something we cannot act on.
  case invalidArgument(String)
  /// A slot cannot serve right now (its agent is not ready, the node is misconfigured).
  case unavailable(String)
  /// A local operation failed (filesystem, process).
  case `internal`(String)

  public var description: String {
    switch self {
    case .invalidArgument(let message), .unavailable(let message), .internal(let message):
      return message
    }
  }

  public var rpcError: RPCError {
    switch self {
    case .invalidArgument(let message): RPCError(code: .invalidArgument, message: message)
    case .unavailable(let message): RPCError(code: .unavailable, message: message)
    case .internal(let message): RPCError(code: .internalError, message: message)
    }
  }

  /// Quotes an identifier from a request for an error message: bounded and printable, since
  /// the input may be hostile (1 MiB strings, NUL bytes, control characters).
  static func quote(_ value: String) -> String {
    let limit = 64
    var shown = ""
    for scalar in value.unicodeScalars.prefix(limit) {
      shown += scalar.properties.generalCategory == .control ? scalar.escaped(asASCII: true) : String(scalar)
    }
    let more = value.unicodeScalars.count > limit ? "…(\(value.utf8.count) bytes)" : ""
    return "'\(shown)\(more)'"
  }
}
