import Glibc
import VaccelConfig

/// The files an agent runs from (its binary, and the libraries and plugins in its library
/// path) as they were when it started. Replacing a running agent's shared libraries in place
/// (`cp` over `/opt/vaccel/lib/libvaccel.so`) crashes it, and every agent on the node with it:
/// when an agent dies, this names the files that changed under it, so the log says what
/// happened instead of a bare SIGSEGV.
struct InstallFingerprint: Sendable, Equatable {
  struct Stamp: Sendable, Equatable {
    var device: UInt64
    var inode: UInt64
    var modifiedSeconds: Int
    var modifiedNanoseconds: Int
    var size: Int64
  }

  private(set) var stamps: [String: Stamp]

  init(executable: String, agent: AgentConfig) {
    var paths = [executable]
    for folder in (agent.libraryPath ?? "").split(separator: ":").map(String.init) where folder.hasPrefix("/") {
      paths += Self.files(in: folder)
    }
    paths += agent.plugins.filter { $0.hasPrefix("/") }
    var stamps: [String: Stamp] = [:]
    for path in paths { stamps[path] = Self.stamp(path) }
    self.stamps = stamps
  }

  /// Files that differ now from when the agent started (replaced, rewritten or removed).
  func changedFiles() -> [String] {
    stamps.compactMap { path, stamp in Self.stamp(path) == stamp ? nil : path }.sorted()
  }

  private static func stamp(_ path: String) -> Stamp? {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    return Stamp(
      device: UInt64(info.st_dev), inode: UInt64(info.st_ino), modifiedSeconds: info.st_mtim.tv_sec,
      modifiedNanoseconds: info.st_mtim.tv_nsec, size: Int64(info.st_size))
  }

  /// Regular files directly in `folder` (the libraries; at most 256, a library path is small).
  private static func files(in folder: String) -> [String] {
    guard let handle = opendir(folder) else { return [] }
    defer { closedir(handle) }
    var found: [String] = []
    while let entry = readdir(handle), found.count < 256 {
      let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
        String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
      }
      guard name != ".", name != ".." else { continue }
      var info = stat()
      let path = folder + "/" + name
      if stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG { found.append(path) }
    }
    return found
  }
}
