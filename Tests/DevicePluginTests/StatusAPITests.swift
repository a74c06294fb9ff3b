import DevicePlugin
import Foundation
import StatusAPI
import Testing
import VaccelConfig
import VaccelCtlKit

/// The status API over its real unix socket, read the way `vaccelctl status` reads it.
@Suite("Status API and vaccelctl status")
struct StatusAPITests {
  static let timeout: Duration = .seconds(20)

  /// The suite shares the process's event loops with load tests (a thousand streams, the
  /// soak's neighbours) that can hold a debug build's loops for seconds: a generous deadline
  /// here, so that what is checked is the answer, not the machine's load.
  static func client(_ socket: String) -> StatusClient {
    StatusClient(socketPath: socket, timeout: Self.timeout)
  }

  @Test func reportsRegistrationSlotsHoldersAndAgents() async throws {
    let podResources = FakePodResources()
    let harness = try await DaemonHarness.start(configure: { $0.resources[0].slots = 3; $0.resources[0].warm = 1 }, podResources: podResources)
    try await DaemonHarness.using(harness) { harness in
      try await harness.registered()
      _ = try await harness.kubelet.admit(harness.resource, [["accel-1"]])
      podResources.set(harness.resource, ["accel-1": Holder(namespace: "ml", pod: "infer-0", container: "app")])
      try await harness.daemon.podResources.pollOnce()
      let held = try await harness.manager.waitForSlot("accel-1", timeout: Self.timeout) { $0.holder != nil && $0.agent.phase == .ready }
      _ = try await harness.manager.waitForSlot("accel-0", timeout: Self.timeout) { $0.agent.phase == .ready }

      let status = try await Self.client(harness.config.statusSocket).fetch()
      #expect(status.daemon.version == BuildInfo.version)
      #expect(status.daemon.pid == Int64(getpid()))
      let resource = try #require(status.resources.first)
      #expect(resource.name == "vaccel.org/accel")
      #expect(resource.registration == .registered)
      #expect(resource.registrations == 1)
      #expect(resource.registrationSinceUnixMs > 0 && resource.registrationSinceUnixMs <= status.nowUnixMs)
      #expect((resource.slotsTotal, resource.slotsHealthy, resource.slotsAllocated) == (3, 3, 1))
      #expect(resource.agentsReady >= 2)
      let slot = resource.slots[1]
      #expect(slot.state == .allocated)
      #expect((slot.holder.namespace, slot.holder.pod, slot.holder.container) == ("ml", "infer-0", "app"))
      #expect(slot.agentPid == Int64(try #require(held.agent.pid)))
      #expect(slot.endpoint.hasPrefix("unix://" + harness.config.runDir + "/accel/accel-1/") && slot.endpoint.hasSuffix("/vaccel.sock"))
      #expect(resource.slots[0].state == .ready)
      #expect(resource.slots[2].state == .free)

      let table = try StatusFormat.render(status, as: .table)
      #expect(table.contains("vaccel.org/accel   Registered"))
      #expect(table.contains("ml/infer-0 (app)"))
      // For scripts: versioned, every field there (null when empty), the table's words, RFC 3339.
      let json = try StatusFormat.render(status, as: .json)
      let parsed = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
      #expect(parsed["apiVersion"] as? String == "vaccel.org/status/v1")
      #expect((parsed["time"] as? String)?.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/) != nil, "\(parsed["time"] ?? "")")
      let resourceObject = try #require((parsed["resources"] as? [[String: Any]])?.first)
      #expect(resourceObject["name"] as? String == "vaccel.org/accel")
      #expect((resourceObject["registration"] as? [String: Any])?["state"] as? String == "Registered")
      #expect((resourceObject["registration"] as? [String: Any])?["lastError"] is NSNull)
      let slots = try #require(resourceObject["slots"] as? [[String: Any]])
      #expect(slots[0]["index"] as? Int == 0, "slot 0's index is there")
      #expect(slots[0]["state"] as? String == "ready")
      #expect(slots[0]["holder"] is NSNull && slots[0]["sandbox"] is NSNull && slots[0]["lastError"] is NSNull)
      #expect((slots[1]["holder"] as? [String: Any])?["pod"] as? String == "infer-0")
      #expect(((slots[1]["agent"] as? [String: Any])?["startedAt"] as? String)?.hasSuffix("Z") == true)
      #expect((slots[2]["agent"] as? [String: Any])?["pid"] is NSNull)
      #expect(!json.contains("\\/"), "slashes are not escaped")
      let yaml = try StatusFormat.render(status, as: .yaml)
      #expect(yaml.contains("state: Registered"), "\(yaml)")
      #expect(yaml.contains("apiVersion: vaccel.org/status/v1"))
      #expect(try StatusFormat.render(status, as: .wide).contains("LAST-ERROR"))
    }
  }

  /// `status --watch`: the status now, then a new one after a change, and the end of the watch
  /// when the daemon stops.
  @Test func aWatchHearsEveryChangeUntilTheDaemonStops() async throws {
    let harness = try await DaemonHarness.start()
    try await harness.registered()
    let (updates, update) = AsyncStream.makeStream(of: Vaccel_Deviceplugin_Status_V1_GetStatusResponse.self)
    let watching = Task {
      var ended = ""
      do {
        try await Self.client(harness.config.statusSocket).watch { update.yield($0) }
      } catch {
        ended = "\(error)"
      }
      update.finish()
      return ended
    }
    // A safety net, not the thing waited for: a broken watch fails the test instead of hanging it.
    let deadline = Task {
      try await Task.sleep(for: Self.timeout)
      update.finish()
    }
    defer { deadline.cancel() }
    var iterator = updates.makeAsyncIterator()
    let first = try #require(await iterator.next())
    #expect(first.resources.first?.slotsAllocated == 0)
    _ = try await harness.kubelet.admit(harness.resource, [["accel-1"]])
    var allocated: Vaccel_Deviceplugin_Status_V1_GetStatusResponse?
    while let next = await iterator.next() {
      if next.resources.first?.slots[1].state == .allocated { allocated = next; break }
    }
    #expect(allocated?.resources.first?.slotsAllocated == 1)
    try await harness.stop()
    await harness.kubelet.stop()
    while await iterator.next() != nil {}
    let ended = await watching.value
    #expect(ended.contains("the daemon stopped"), "\(ended)")
  }

  @Test func waitingForTheKubeletIsReportedWithItsSocket() async throws {
    let (logger, lines) = capturedLogger()
    let harness = try await DaemonHarness.start(kubeletFirst: false, logger: logger)
    try await DaemonHarness.using(harness) { harness in
      let client = Self.client(harness.config.statusSocket)
      let registration = try #require(harness.daemon.plugins.first?.registration)
      #expect(await registration.wait(timeout: Self.timeout) { $0.state == .waitingForKubelet } != nil)
      // The status socket comes up beside registration, not before it: wait until it is served.
      _ = try await firstLine(in: lines, containing: "serving status")
      let status = try await client.fetch()
      #expect(status.resources[0].registration == .waitingForKubelet)
      #expect(status.resources[0].registrations == 0)
      try await harness.kubelet.start()
      #expect(await registration.wait(timeout: Self.timeout) { $0.state == .registered } != nil)
      #expect(try await client.fetch().resources[0].registration == .registered)
    }
  }

  @Test func socketIsOwnerOnlyAndUnknownResourcesAreNamed() async throws {
    let harness = try await DaemonHarness.start()
    try await DaemonHarness.using(harness) { harness in
      try await harness.registered()
      var info = stat()
      #expect(lstat(harness.config.statusSocket, &info) == 0)
      #expect(info.st_mode & 0o777 == 0o600)
      let client = Self.client(harness.config.statusSocket)
      await #expect(throws: CtlError.badRequest("no resource 'vaccel.org/nope' on this node; it serves: vaccel.org/accel")) {
        _ = try await client.fetch(resources: ["vaccel.org/nope"])
      }
      #expect(try await client.fetch(resources: ["vaccel.org/accel"]).resources.count == 1)
    }
    // Gone with the daemon.
    #expect(!FileManager.default.fileExists(atPath: harness.config.statusSocket))
  }

  @Test func configuredModeApplies() async throws {
    let harness = try await DaemonHarness.start(configure: { $0.status.mode = 0o660; $0.status.group = UInt32(getgid()) })
    try await DaemonHarness.using(harness) { harness in
      try await harness.registered()
      var info = stat()
      #expect(lstat(harness.config.statusSocket, &info) == 0)
      #expect(info.st_mode & 0o777 == 0o660)
      #expect(info.st_gid == getgid())
    }
  }

  @Test func anUnreachableDaemonIsTwoShortLinesNamingTheSocket() async throws {
    let directory = try TestDirectory()
    let missing = directory.sub("none.sock")
    await #expect {
      _ = try await StatusClient(socketPath: missing).fetch()
    } throws: { error in
      guard case .unreachable(let socket, let reason) = error as? CtlError else { return false }
      return socket == missing && reason == "no such socket" && "\(error)".split(separator: "\n").count == 2
    }
    // A stale socket file: nobody listens.
    let stale = directory.sub("stale.sock")
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(stale.utf8) + [0]) }
    _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
    close(fd)
    await #expect {
      _ = try await StatusClient(socketPath: stale).fetch()
    } throws: { error in
      "\(error)".contains("connection refused") && (error as? CtlError)?.exitCode == 1
    }
  }
}
