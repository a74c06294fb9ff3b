import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import NodeSupport
public import StatusAPI
import VaccelConfig

/// Reads the daemon's status API over its unix socket.
public struct StatusClient: Sendable {
  public static let defaultSocket = "/var/run/vaccel/device-plugin.sock"
  /// The daemon's own variable: one name for both.
  public static let socketEnvironment = ConfigLoader.Environment.statusSocket
  /// What vaccelctl read before 0.2; still honoured.
  public static let oldSocketEnvironment = "VACCEL_STATUS_SOCKET"

  /// The status socket as the daemon finds it: `--socket`, else the old variable, else the
  /// daemon's config (`configPath`, else $VACCEL_DP_CONFIG) with its environment
  /// ($VACCEL_DP_STATUS_SOCKET, $VACCEL_DP_RUN_DIR) over it.
  public static func socket(given: String?, configPath: String?, environment: [String: String]) throws(CtlError) -> String {
    if let given { return given }
    if let old = environment[oldSocketEnvironment] { return old }
    let config: DaemonConfig
    do {
      config = try ConfigLoader.load(flags: ConfigOverrides(configPath: configPath), environment: environment)
    } catch {
      throw .usage("cannot find the status socket: \(error)")
    }
    guard !config.statusSocket.isEmpty else {
      throw .usage("the daemon's config turns the status API off (status.socket: \"\")")
    }
    return config.statusSocket
  }

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
  /// The status now and after every change, each handed to `each`, until the daemon stops
  /// (`.failed`) or the caller is cancelled.
  public func watch(
    resources: [String] = [],
    _ each: @escaping @Sendable (Vaccel_Deviceplugin_Status_V1_GetStatusResponse) async throws -> Void
  ) async throws(CtlError) {
    if let problem = SocketProbe.problem(connecting: socketPath) {
      throw .unreachable(socket: socketPath, reason: problem)
    }
    do {
      let transport = try HTTP2ClientTransport.Posix(
        target: .unixDomainSocket(path: socketPath, authority: "localhost"), transportSecurity: .plaintext)
      try await withGRPCClient(transport: transport) { client in
        var options = CallOptions.defaults
        options.waitForReady = false
        try await Vaccel_Deviceplugin_Status_V1_Status.Client(wrapping: client)
          .watchStatus(.with { $0.resources = resources }, options: options) { response in
            for try await status in response.messages { try await each(status) }
          }
      }
    } catch let error as RPCError where error.code == .notFound || error.code == .invalidArgument {
      throw .badRequest(error.message)
    } catch let error as RPCError {
      throw .unreachable(socket: socketPath, reason: "\(error.code): \(error.message)")
    } catch let error as CtlError {
      throw error
    } catch {
      throw .unreachable(socket: socketPath, reason: "\(error)")
    }
    throw .failed("the daemon stopped: the watch ended")
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
