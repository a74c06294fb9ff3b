import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import NodeSupport
public import StatusAPI

/// Reads the daemon's status API over its unix socket.
public struct StatusClient: Sendable {
  public static let defaultSocket = "/var/run/vaccel/device-plugin.sock"
  public static let socketEnvironment = "VACCEL_STATUS_SOCKET"

  public var socketPath: String
  public var timeout: Duration

  public init(socketPath: String = StatusClient.defaultSocket, timeout: Duration = .seconds(5)) {
    self.socketPath = socketPath
    self.timeout = timeout
  }

  public func fetch(resources: [String] = []) async throws(CtlError) -> Vaccel_Deviceplugin_Status_V1_GetStatusResponse {
    // A plain connect first: it names the problem (no such file, refused, permission) before
    // gRPC turns it into a generic "unavailable".
    if let problem = SocketProbe.problem(connecting: socketPath) {
      throw .unreachable(socket: socketPath, reason: problem)
    }
    do {
      let transport = try HTTP2ClientTransport.Posix(
        target: .unixDomainSocket(path: socketPath, authority: "localhost"), transportSecurity: .plaintext)
      return try await withGRPCClient(transport: transport) { client in
        var options = CallOptions.defaults
        options.timeout = timeout
        options.waitForReady = false
        return try await Vaccel_Deviceplugin_Status_V1_Status.Client(wrapping: client)
          .getStatus(.with { $0.resources = resources }, options: options)
      }
    } catch let error as RPCError where error.code == .notFound || error.code == .invalidArgument {
      throw .badRequest(error.message)
    } catch let error as RPCError {
      throw .unreachable(socket: socketPath, reason: "\(error.code): \(error.message)")
    } catch {
      throw .unreachable(socket: socketPath, reason: "\(error)")
    }
  }
}

/// Why a unix socket cannot be reached, in words an operator can act on.
enum SocketProbe {
  static func problem(connecting path: String) -> String? {
    var info = stat()
    guard lstat(path, &info) == 0 else {
      return errno == ENOENT ? "no such socket" : String(cString: strerror(errno))
    }
    guard info.st_mode & S_IFMT == S_IFSOCK else { return "the path exists but is not a socket" }
    guard let code = UnixSocketProbe.connectError(path) else { return nil }
    switch code {
    case ECONNREFUSED: return "connection refused (a stale socket: the daemon is not running)"
    case EACCES: return "permission denied (the socket is mode 0600 for root unless status.mode/status.group open it)"
    default: return String(cString: strerror(code))
    }
  }
}
