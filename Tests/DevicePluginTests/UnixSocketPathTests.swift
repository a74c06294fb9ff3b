import Foundation
import GRPCUnixServer
import NodeSupport
import Testing

@Suite("UnixSocketPath: what may be bound")
struct UnixSocketPathTests {
  @Test func staleSocketIsRemoved() throws {
    let directory = try TestDirectory()
    let path = directory.sub("stale.sock")
    // A socket file nobody listens on, as a SIGKILLed process leaves behind.
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
      let bytes = Array(path.utf8)
      raw.copyBytes(from: bytes)
      raw[bytes.count] = 0
    }
    let bound = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    #expect(bound == 0)
    close(fd)
    #expect(FileManager.default.fileExists(atPath: path))
    #expect(!UnixSocketPath.accepts(path))

    try UnixSocketPath.prepareForBind(path)
    #expect(!FileManager.default.fileExists(atPath: path))
  }

  @Test func aLiveSocketIsRefusedAndLeftAlone() throws {
    let directory = try TestDirectory()
    let path = directory.sub("live.sock")
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
      let bytes = Array(path.utf8)
      raw.copyBytes(from: bytes)
      raw[bytes.count] = 0
    }
    let bound = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    #expect(bound == 0 && listen(fd, 1) == 0)

    #expect(throws: UnixSocketPathError.inUse(path: path)) { try UnixSocketPath.prepareForBind(path) }
    #expect(UnixSocketPath.accepts(path), "the other process's socket still works")
  }

  @Test func regularFileIsRefused() throws {
    let directory = try TestDirectory()
    let path = directory.sub("file.sock")
    _ = FileManager.default.createFile(atPath: path, contents: Data("keep me".utf8))
    #expect(throws: UnixSocketPathError.notASocket(path: path)) { try UnixSocketPath.prepareForBind(path) }
    #expect(FileManager.default.contents(atPath: path) == Data("keep me".utf8))
  }

  @Test func symlinkIsRefusedNotFollowed() throws {
    let directory = try TestDirectory()
    let target = directory.sub("target")
    _ = FileManager.default.createFile(atPath: target, contents: Data())
    let path = directory.sub("link.sock")
    try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: target)
    #expect(throws: UnixSocketPathError.notASocket(path: path)) { try UnixSocketPath.prepareForBind(path) }
    #expect(FileManager.default.fileExists(atPath: target))
  }

  @Test func tooLongIsRefused() {
    let path = "/tmp/" + String(repeating: "x", count: 100)
    #expect(throws: UnixSocketPathError.tooLong(path: path, bytes: 105)) { try UnixSocketPath.prepareForBind(path) }
  }
}

@Suite("Directories never follow a planted symlink")
struct DirectoriesTests {
  @Test func wipingASymlinkedSlotFolderLeavesItsTargetAlone() throws {
    let directory = try TestDirectory()
    let precious = directory.sub("precious")
    try FileManager.default.createDirectory(atPath: precious, withIntermediateDirectories: true)
    _ = FileManager.default.createFile(atPath: precious + "/keep", contents: Data("x".utf8))
    try FileManager.default.createSymbolicLink(atPath: directory.sub("slot"), withDestinationPath: precious)

    Directories.removeContents(of: directory.sub("slot"))
    #expect(FileManager.default.fileExists(atPath: precious + "/keep"))
  }

  @Test func creatingBeneathARootRefusesASymlink() throws {
    let directory = try TestDirectory()
    try FileManager.default.createDirectory(atPath: directory.sub("run"), withIntermediateDirectories: true)
    try FileManager.default.createSymbolicLink(atPath: directory.sub("run/accel"), withDestinationPath: "/etc")
    #expect(throws: FileSystemError.self) { try Directories.create("accel/accel-0", beneath: directory.sub("run")) }
    #expect(!FileManager.default.fileExists(atPath: "/etc/accel-0"))
  }
}
