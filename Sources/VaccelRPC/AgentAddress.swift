import NodeSupport

/// An address in the vAccel agent's syntax (`-a`): `unix:///abs/path.sock`, `unix://@name`
/// (abstract), `tcp://HOST:PORT`, `vsock://CID:PORT` (CID `-1` = any, when listening).
public enum AgentAddress: Sendable, Equatable, CustomStringConvertible {
  case unix(path: String)
  case abstractUnix(name: String)
  case tcp(host: String, port: Int)
  case vsock(cid: Int64, port: UInt32)

  public enum ParseError: Error, Equatable, CustomStringConvertible {
    case unsupportedScheme(String)
    case malformed(String, reason: String)

    public var description: String {
      switch self {
      case .unsupportedScheme(let address): "unsupported address scheme in '\(address)' (unix, tcp, vsock)"
      case .malformed(let address, let reason): "malformed address '\(address)': \(reason)"
      }
    }
  }

  public init(parsing text: String) throws(ParseError) {
    guard let range = text.firstUTF8Range(of: "://") else { throw .unsupportedScheme(text) }
    let scheme = text[..<range.lowerBound]
    let rest = String(text[range.upperBound...])
    switch scheme {
    case "unix":
      if rest.hasPrefix("@") {
        guard rest.count > 1 else { throw .malformed(text, reason: "empty abstract name") }
        self = .abstractUnix(name: String(rest.dropFirst()))
      } else {
        guard rest.hasPrefix("/") else { throw .malformed(text, reason: "the path must be absolute") }
        self = .unix(path: rest)
      }
    case "tcp":
      let (host, port) = try Self.hostAndPort(rest, text)
      guard let port = Int(port), (0...65535).contains(port) else { throw .malformed(text, reason: "bad port") }
      self = .tcp(host: host, port: port)
    case "vsock":
      let (cid, port) = try Self.hostAndPort(rest, text)
      guard let cid = Int64(cid), cid >= -1, cid <= Int64(UInt32.max) else { throw .malformed(text, reason: "bad CID") }
      guard let port = UInt32(port) else { throw .malformed(text, reason: "bad port") }
      self = .vsock(cid: cid, port: port)
    default:
      throw .unsupportedScheme(text)
    }
  }

  private static func hostAndPort(_ rest: String, _ text: String) throws(ParseError) -> (String, String) {
    guard let colon = rest.lastIndex(of: ":"), colon != rest.startIndex else {
      throw .malformed(text, reason: "expected HOST:PORT")
    }
    return (String(rest[..<colon]), String(rest[rest.index(after: colon)...]))
  }

  public var description: String {
    switch self {
    case .unix(let path): "unix://\(path)"
    case .abstractUnix(let name): "unix://@\(name)"
    case .tcp(let host, let port): "tcp://\(host):\(port)"
    case .vsock(let cid, let port): "vsock://\(cid):\(port)"
    }
  }
}
