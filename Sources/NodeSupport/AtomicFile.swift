#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Whole-file replacement that a crash or a full disk can never leave half-written: a fresh
/// temp file beside the target (never through a symlink), fsync, rename, fsync of the folder.
/// On any failure the old file is untouched and the temp file removed.
public enum AtomicFile {
  public static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o644) throws(FileSystemError) {
    let temporary = path + ".tmp"
    unlink(temporary)
    let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode)
    guard fd >= 0 else { throw FileSystemError(operation: "create", path: temporary, errno: errno) }
    var failure: (String, Int32)?
    bytes.withUnsafeBytes { raw in
      var offset = 0
      while offset < raw.count {
        let written = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
        if written < 0 {
          if errno == EINTR { continue }
          failure = ("write", errno)
          return
        }
        offset += written
      }
    }
    if failure == nil && fsync(fd) != 0 { failure = ("fsync", errno) }
    close(fd)
    if let (operation, code) = failure {
      unlink(temporary)
      throw FileSystemError(operation: operation, path: temporary, errno: code)
    }
    guard rename(temporary, path) == 0 else {
      let code = errno
      unlink(temporary)
      throw FileSystemError(operation: "rename", path: path, errno: code)
    }
    let folder = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
    let folderFD = open(folder.isEmpty ? "/" : folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if folderFD >= 0 {
      fsync(folderFD)
      close(folderFD)
    }
  }
}
