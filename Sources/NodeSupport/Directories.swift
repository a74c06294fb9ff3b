#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed filesystem operation, with the path and the OS's reason.
public struct FileSystemError: Error, Equatable, CustomStringConvertible, Sendable {
  public var operation: String
  public var path: String
  public var errno: Int32

  public var description: String {
    "\(operation) '\(path)': \(String(cString: strerror(errno)))"
  }
}

/// Folder helpers on the raw syscalls, so that a symlink planted in our tree is never followed.
public enum Directories {
  /// The folder `path` is in, lexically: `/a/b` → `/a`, `/a` → `/`, `a` → ``.
  public static func parent(of path: String) -> String {
    var path = Substring(path)
    while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
    guard let slash = path.lastIndex(of: "/") else { return "" }
    return slash == path.startIndex ? "/" : String(path[..<slash])
  }

  /// `mkdir -p` for a configured root (`runDir`, `stateDir`): symlinks among its ancestors are
  /// the operator's business (`/var/run` is one on most distributions) and are followed.
  public static func create(_ path: String, mode: mode_t = 0o755) throws(FileSystemError) {
    var current = path.hasPrefix("/") ? "" : "."
    for component in path.split(separator: "/") {
      current += "/" + component
      if mkdir(current, mode) != 0 && errno != EEXIST {
        throw FileSystemError(operation: "mkdir", path: current, errno: errno)
      }
    }
    var info = stat()
    guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
      throw FileSystemError(operation: "mkdir (exists and is not a directory)", path: path, errno: ENOTDIR)
    }
  }

  /// `mkdir -p` of `relative` beneath `root`, where nothing may be a symlink: a link planted in
  /// our own tree is refused, never followed.
  public static func create(_ relative: String, beneath root: String, mode: mode_t = 0o755) throws(FileSystemError) {
    var current = root
    for component in relative.split(separator: "/") {
      guard component != "..", component != "." else {
        throw FileSystemError(operation: "mkdir (path escapes its root)", path: root + "/" + relative, errno: EINVAL)
      }
      current = current.hasSuffix("/") ? current + component : current + "/" + component
      var info = stat()
      if lstat(current, &info) == 0 {
        guard info.st_mode & S_IFMT == S_IFDIR else {
          throw FileSystemError(operation: "mkdir (exists and is not a directory)", path: current, errno: ENOTDIR)
        }
        continue
      }
      guard errno == ENOENT else { throw FileSystemError(operation: "lstat", path: current, errno: errno) }
      if mkdir(current, mode) != 0 && errno != EEXIST {
        throw FileSystemError(operation: "mkdir", path: current, errno: errno)
      }
    }
  }

  /// Identity of a file: changes when the file is replaced by a new one of the same name.
  public static func identity(of path: String) -> FileIdentity? {
    var info = stat()
    guard lstat(path, &info) == 0 else { return nil }
    return FileIdentity(
      device: UInt64(info.st_dev), inode: UInt64(info.st_ino),
      changeSeconds: Int64(info.st_ctim.tv_sec), changeNanoseconds: Int64(info.st_ctim.tv_nsec))
  }
}

public struct FileIdentity: Sendable, Equatable {
  public var device: UInt64
  public var inode: UInt64
  public var changeSeconds: Int64
  public var changeNanoseconds: Int64

  /// Same file, ignoring metadata changes (chmod touches ctime).
  public func isSameFile(as other: FileIdentity) -> Bool {
    device == other.device && inode == other.inode
  }
}

extension Directories {
  public static func remove(_ path: String) {
    unlink(path)
  }
}

extension Directories {
  /// Removes everything inside `folder` (not following symlinks), keeping the folder.
  public static func removeContents(of folder: String) {
    // Never through a symlink: a link planted where a slot folder should be must not make us
    // empty whatever it points at.
    var own = stat()
    guard lstat(folder, &own) == 0, own.st_mode & S_IFMT == S_IFDIR else { return }
    let descriptor = open(folder, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
    guard descriptor >= 0 else { return }
    guard let handle = fdopendir(descriptor) else {
      close(descriptor)
      return
    }
    defer { closedir(handle) }
    while let entry = readdir(handle) {
      let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
        String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
      }
      guard name != ".", name != ".." else { continue }
      let path = folder + "/" + name
      var info = stat()
      guard lstat(path, &info) == 0 else { continue }
      if info.st_mode & S_IFMT == S_IFDIR {
        removeContents(of: path)
        rmdir(path)
      } else {
        unlink(path)
      }
    }
  }
}

extension Directories {
  /// Removes `folder` and everything in it, never through a symlink.
  public static func removeTree(_ folder: String) {
    var own = stat()
    guard lstat(folder, &own) == 0, own.st_mode & S_IFMT == S_IFDIR else { return }
    removeContents(of: folder)
    rmdir(folder)
  }

  /// The folders directly inside `folder` (no symlinks), newest change first.
  public static func subfolders(of folder: String) -> [String] {
    let descriptor = open(folder, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
    guard descriptor >= 0 else { return [] }
    guard let handle = fdopendir(descriptor) else {
      close(descriptor)
      return []
    }
    defer { closedir(handle) }
    var found: [(name: String, changed: timespec)] = []
    while let entry = readdir(handle) {
      let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
        String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
      }
      guard name != ".", name != ".." else { continue }
      var info = stat()
      guard lstat(folder + "/" + name, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else { continue }
      found.append((name, info.st_mtim))
    }
    return found.sorted { ($0.changed.tv_sec, $0.changed.tv_nsec) > ($1.changed.tv_sec, $1.changed.tv_nsec) }.map(\.name)
  }
}
