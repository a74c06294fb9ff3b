import DevicePlugin
import Foundation
import Testing
import VaccelConfig

/// Who can reach a slot's agent: only through its own folder, only the configured user/group.
@Suite("Endpoint isolation: folder and socket ownership and modes")
struct EndpointAccessTests {
  static let timeout: Duration = .seconds(20)

  static func mode(_ path: String) throws -> (mode: Int, uid: Int, gid: Int) {
    let info = try FileManager.default.attributesOfItem(atPath: path)
    return ((info[.posixPermissions] as? Int) ?? -1, (info[.ownerAccountID] as? Int) ?? -1, (info[.groupOwnerAccountID] as? Int) ?? -1)
  }

  /// Connects to `socket` as uid/gid (a child that drops privileges), returns whether it could.
  static func canConnect(_ socket: String, uid: Int, gid: Int) async throws -> Bool {
    let script = """
      import os, socket, sys
      os.setgroups([]); os.setgid(\(gid)); os.setuid(\(uid))
      s = socket.socket(socket.AF_UNIX)
      try:
          s.connect(sys.argv[1])
      except OSError:
          sys.exit(1)
      """
    let result = try await ChildProcess.run("/usr/bin/python3", ["-c", script, socket])
    return result.status == 0
  }

  @Test func byDefaultOnlyRootReachesTheAgentAndTheParentIsNotListable() async throws {
    try await DaemonHarness.using(try await DaemonHarness.start()) { harness in
      try await harness.registered()
      let folder = try await harness.kubelet.admit(harness.resource, [["accel-0"]]).hostFolder
      #expect(try Self.mode(folder) == (0o710, 0, 0))
      #expect(try Self.mode(folder + "/vaccel.sock").mode == 0o660)
      #expect(try Self.mode(harness.config.runDir + "/accel").mode == 0o711)
      #expect(try Self.mode(harness.config.runDir + "/accel/accel-0").mode == 0o711)
      chmod(harness.directory.path, 0o711)
      #expect(try await !Self.canConnect(folder + "/vaccel.sock", uid: 1000, gid: 1000))
    }
  }

  @Test func aConfiguredGroupLetsItsPodsInAndNobodyElse() async throws {
    let harness = try await DaemonHarness.start(configure: { $0.resources[0].endpoint = EndpointAccess(uid: 0, gid: 2000, mode: 0o660) })
    try await DaemonHarness.using(harness) { harness in
      // The temp folder stands for /var/run: traversable by everyone (pods reach their slot
      // folder through its bind mount; the path above it does not matter to them).
      chmod(harness.directory.path, 0o711)
      try await harness.registered()
      let folder = try await harness.kubelet.admit(harness.resource, [["accel-1"]]).hostFolder
      let socket = folder + "/vaccel.sock"
      #expect(try Self.mode(folder) == (0o710, 0, 2000))
      #expect(try Self.mode(socket) == (0o660, 0, 2000))
      #expect(try await Self.canConnect(socket, uid: 1000, gid: 2000), "a pod in group 2000")
      #expect(try await !Self.canConnect(socket, uid: 1000, gid: 3000), "a pod in another group")
      // Neither pod can list the resource or slot folder to find other slots or allocations.
      #expect(try Self.mode(harness.config.runDir + "/accel").mode & 0o044 == 0)
      #expect(try Self.mode(harness.config.runDir + "/accel/accel-1").mode & 0o044 == 0)
    }
  }
}
