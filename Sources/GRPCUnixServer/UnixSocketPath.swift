import NodeSupport

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What can be wrong with a path we are about to listen on.
public enum UnixSocketPathError: Error, Equatable, CustomStringConvertible {
  case tooLong(path: String, bytes: Int)
  case notASocket(path: String)
  case inUse(path: String)
  case system(path: String, operation: String, errno: Int32)

  public var description: String {
    switch self {
    case .tooLong(let path, let bytes):
      return "socket path '\(path)' is \(bytes) bytes; at most \(UnixSocketPath.maxLength) are supported"
    case .notASocket(let path):
      return "'\(path)' exists and is not a socket; refusing to replace it"
    case .inUse(let path):
      return "'\(path)' is served by another live process (a second instance?); refusing to take it over"
    case .system(let path, let operation, let code):
      return "\(operation) '\(path)' failed: \(String(cString: strerror(code)))"
    }
  }
}

/// Checks done before binding a unix socket path.
public enum UnixSocketPath {
  /// NIO accepts at most 103 bytes (sun_path minus its terminator, minus one).
  public static let maxLength = 103

  public static func validateLength(_ path: String) throws(UnixSocketPathError) {
    let bytes = path.utf8.count
    guard bytes <= self.maxLength else { throw .tooLong(path: path, bytes: bytes) }
  }

  /// Makes `path` free to bind: a stale socket (nobody accepts on it) is removed; a live socket
  /// or anything that is not a socket is refused rather than silently taken over.
  public static func prepareForBind(_ path: String) throws(UnixSocketPathError) {
    try self.validateLength(path)
    var info = stat()
    guard lstat(path, &info) == 0 else {
      if errno == ENOENT { return }
      throw .system(path: path, operation: "lstat", errno: errno)
    }
    guard info.st_mode & S_IFMT == S_IFSOCK else { throw .notASocket(path: path) }
    if self.accepts(path) { throw .inUse(path: path) }
    guard unlink(path) == 0 || errno == ENOENT else {
      throw .system(path: path, operation: "unlink", errno: errno)
    }
  }

  /// Whether a process accepts connections on the socket at `path` right now.
  public static func accepts(_ path: String) -> Bool {
    UnixSocketProbe.connectError(path) == nil
  }
}
