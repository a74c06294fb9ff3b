#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Owner and mode of a file we created, set without ever following a symlink: a pod that can
/// write into its slot folder could swap the socket for a link to a host file. The path is
/// opened `O_PATH | O_NOFOLLOW`, its type checked on the descriptor, and owner and mode set
/// through that descriptor (the mode via `/proc/self/fd`, the one way for an `O_PATH` one).
public enum FileAccess {
  /// Linux's values (the same on x86_64 and arm64); Glibc's module hides them behind _GNU_SOURCE.
  static let openPath: Int32 = 0o10_000_000  // O_PATH
  static let emptyPath: Int32 = 0x1000  // AT_EMPTY_PATH

  public static func set(
    _ path: String, type expected: mode_t, uid: UInt32?, gid: UInt32?, mode: UInt32
  ) throws(FileSystemError) {
    let fd = open(path, openPath | O_NOFOLLOW | O_CLOEXEC)
    guard fd >= 0 else { throw FileSystemError(operation: "open", path: path, errno: errno) }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0 else { throw FileSystemError(operation: "fstat", path: path, errno: errno) }
    guard info.st_mode & S_IFMT == expected else {
      throw FileSystemError(operation: "set owner and mode (not the expected file type, left alone)", path: path, errno: EPERM)
    }
    // Mode first: once the file belongs to another user, changing its mode would need CAP_FOWNER.
    guard chmod("/proc/self/fd/\(fd)", mode_t(mode)) == 0 else {
      throw FileSystemError(operation: "chmod", path: path, errno: errno)
    }
    if uid != nil || gid != nil {
      guard fchownat(fd, "", uid ?? UInt32.max, gid ?? UInt32.max, emptyPath) == 0 else {
        throw FileSystemError(operation: "chown", path: path, errno: errno)
      }
    }
  }
}
