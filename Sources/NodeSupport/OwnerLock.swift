#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One owner per state folder: an exclusive `flock` on `<folder>/lock`, held for the life of
/// the process and let go by the kernel however it ends (SIGKILL included). The owner's pid is
/// written into the file so that a refused instance can say whom it found.
public final class OwnerLock: Sendable {
  public static let fileName = "lock"
  public let path: String
  private let descriptor: Int32

  public enum Failure: Error, Equatable, CustomStringConvertible {
    /// Another live process holds the lock.
    case held(path: String, folder: String, owner: Int32?)
    case io(FileSystemError)

    public var description: String {
      switch self {
      case .held(_, let folder, let owner):
        "another vaccel-device-plugin (pid \(owner.map(String.init) ?? "unknown")) owns \(folder)"
      case .io(let error): "cannot take the lock: \(error)"
      }
    }
  }

  /// Takes the lock in `folder` (which must exist), or fails at once: never waits.
  public init(folder: String) throws(Failure) {
    let path = folder.hasSuffix("/") ? folder + Self.fileName : folder + "/" + Self.fileName
    self.path = path
    let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
    guard fd >= 0 else { throw .io(FileSystemError(operation: "open", path: path, errno: errno)) }
    guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
      let code = errno
      let owner = Self.readOwner(fd)
      close(fd)
      if code == EWOULDBLOCK { throw .held(path: path, folder: folder, owner: owner) }
      throw .io(FileSystemError(operation: "flock", path: path, errno: code))
    }
    descriptor = fd
    let text = Array("\(getpid())\n".utf8)
    _ = ftruncate(fd, 0)
    _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
  }

  deinit {
    close(descriptor)
  }

  private static func readOwner(_ fd: Int32) -> Int32? {
    var buffer = [UInt8](repeating: 0, count: 32)
    let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
    guard count > 0 else { return nil }
    return Int32(String(decoding: buffer[0..<count], as: UTF8.self).trimmingWhitespace)
  }
}

extension String {
  fileprivate var trimmingWhitespace: String {
    String(unicodeScalars.filter { !" \n\t\r".unicodeScalars.contains($0) })
  }
}
