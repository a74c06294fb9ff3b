@testable import DevicePlugin
import Foundation
import NodeSupport
import Testing

/// Files an attacker (or a full disk) could put in the daemon's way.
@Suite("Hostile files: symlinks, foreign files, a full disk")
struct HostileFilesTests {
  @Test func ownerAndModeAreNeverSetThroughASymlink() throws {
    let directory = try TestDirectory()
    let victim = directory.sub("host-file")
    _ = FileManager.default.createFile(atPath: victim, contents: Data("secret".utf8), attributes: [.posixPermissions: 0o600])
    let link = directory.sub("vaccel.sock")
    try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: victim)
    #expect(throws: FileSystemError.self) {
      try FileAccess.set(link, type: S_IFSOCK, uid: 1234, gid: 1234, mode: 0o666)
    }
    let info = try FileManager.default.attributesOfItem(atPath: victim)
    #expect(info[.posixPermissions] as? Int == 0o600)
    #expect(info[.ownerAccountID] as? Int == 0)
    // A regular file where a socket should be is refused as well.
    let plain = directory.sub("plain")
    _ = FileManager.default.createFile(atPath: plain, contents: nil, attributes: [.posixPermissions: 0o600])
    #expect(throws: FileSystemError.self) { try FileAccess.set(plain, type: S_IFSOCK, uid: nil, gid: nil, mode: 0o666) }
  }

  @Test func aPlantedCheckpointSymlinkIsNotFollowed() throws {
    let directory = try TestDirectory()
    let state = directory.sub("state")
    try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
    let victim = directory.sub("elsewhere.json")
    _ = FileManager.default.createFile(atPath: victim, contents: Data("{}".utf8))
    try FileManager.default.createSymbolicLink(atPath: state + "/checkpoint.json", withDestinationPath: victim)
    let store = CheckpointStore(stateDir: state)
    #expect(throws: CheckpointError.self) { _ = try store.load() }
    // Saving replaces the link itself (rename), never writes through it.
    try store.save(Checkpoint(resources: ["vaccel.org/accel": []]))
    #expect(try String(contentsOfFile: victim, encoding: .utf8) == "{}")
    #expect(try store.load()?.resources.keys.sorted() == ["vaccel.org/accel"])
  }

  /// tmpfs needs CAP_SYS_ADMIN; where it cannot be mounted the test says so instead of passing.
  static let canMount: Bool = {
    let probe = "/tmp/vdp-mount-probe-\(getpid())"
    mkdir(probe, 0o700)
    defer { rmdir(probe) }
    guard mount("tmpfs", probe, "tmpfs", 0, "size=16k") == 0 else { return false }
    umount(probe)
    return true
  }()

  @Test(.enabled(if: canMount, "needs CAP_SYS_ADMIN to mount a small tmpfs"))
  func aFullDiskWhileWritingTheCheckpointLosesNothing() throws {
    let directory = try TestDirectory()
    let state = directory.sub("state")
    try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
    #expect(mount("tmpfs", state, "tmpfs", 0, "size=256k") == 0)
    defer { umount(state) }
    let store = CheckpointStore(stateDir: state)
    let small = Checkpoint(resources: ["vaccel.org/accel": [.init(id: "accel-0", allocated: true, holder: nil, generation: 1, pid: 42, endpoint: "unix:///x")]])
    try store.save(small)

    // Fill the disk, then try to write a checkpoint that no longer fits.
    let filler = FileHandle(forWritingAtPath: state + "/filler") ?? {
      _ = FileManager.default.createFile(atPath: state + "/filler", contents: nil)
      return FileHandle(forWritingAtPath: state + "/filler")!
    }()
    while (try? filler.write(contentsOf: Data(count: 4096))) != nil {}
    try? filler.close()
    let big = Checkpoint(resources: ["vaccel.org/accel": (0..<512).map {
      .init(id: "accel-\($0)", allocated: true, holder: Holder(namespace: "ns", pod: "pod-\($0)", container: "c"), generation: $0, pid: Int32($0), endpoint: "unix:///run/vaccel/accel/accel-\($0)/vaccel.sock")
    }])
    #expect(throws: CheckpointError.self) { try store.save(big) }
    #expect(try store.load() == small, "the previous checkpoint is intact")
    #expect(!FileManager.default.fileExists(atPath: state + "/checkpoint.json.tmp"), "no half-written temp file left")

    // Space again: the next write succeeds.
    try FileManager.default.removeItem(atPath: state + "/filler")
    try store.save(big)
    #expect(try store.load() == big)
  }
}
