import DaemonLogging
import DevicePlugin
import NodeSupport
import Foundation
import GRPCCore
import KubeletAPI
import Logging
import Testing
import VaccelConfig

@Suite("Node daemon against a fake kubelet over real unix sockets")
struct NodeDaemonTests {
  @Test func registersAndAdvertisesEverySlotHealthy() async throws {
    try await DaemonHarness.using(try await DaemonHarness.start()) { harness in
      let state = try await harness.registered()

      let plugin = try #require(state.plugins["vaccel.org/accel"])
      #expect(plugin.request.version == "v1beta1")
      #expect(plugin.request.endpoint == "vaccel-accel.sock")
      #expect(plugin.request.options.preStartRequired)
      #expect(plugin.request.options.getPreferredAllocationAvailable)
      #expect(plugin.options.preStartRequired && plugin.options.getPreferredAllocationAvailable)
      #expect(plugin.devices.map(\.id) == (0..<8).map { "accel-\($0)" })
      #expect(plugin.devices.allSatisfy { $0.health == "Healthy" })
    }
  }

  @Test func allocateHandsOutTheSlotEndpoint() async throws {
    try await DaemonHarness.using(try await DaemonHarness.start()) { harness in
      try await harness.registered()

      let reply = try await harness.kubelet.admit(harness.resource, [["accel-3"]])
      #expect(reply.containerResponses.count == 1)
      let container = try #require(reply.containerResponses.first)
      #expect(container.envs["VACCEL_RPC_ADDRESS"] == "unix:///var/run/vaccel/vaccel.sock")
      #expect(container.envs["VACCEL_PLUGINS"] == "libvaccel-rpc.so")
      // The allocation's own folder, inside the slot's.
      let hostFolder = try reply.hostFolder
      #expect(hostFolder.hasPrefix(harness.config.runDir + "/accel/accel-3/"))
      #expect(EndpointLayout.isAllocation(String(hostFolder.split(separator: "/").last ?? "")))
      #expect(container.mounts.map(\.containerPath) == ["/var/run/vaccel"])
      #expect(container.annotations["vaccel.org/slots"] == "accel-3")
      #expect(container.annotations["vaccel.org/resource"] == "vaccel.org/accel")
      var isDirectory: ObjCBool = false
      #expect(FileManager.default.fileExists(atPath: hostFolder, isDirectory: &isDirectory) && isDirectory.boolValue)
    }
  }

  @Test func answersOneReplyPerContainerInOrder() async throws {
    try await DaemonHarness.using(try await DaemonHarness.start()) { harness in
      try await harness.registered()

      let reply = try await harness.kubelet.admit(harness.resource, [["accel-5"], ["accel-1"]])
      #expect(reply.containerResponses.map { $0.annotations["vaccel.org/slots"] } == ["accel-5", "accel-1"])
    }
  }

  @Test(arguments: [
    ("empty request", [[String]]()),
    ("container without devices", [[]]),
    ("unknown ID", [["accel-99"]]),
    ("path traversal", [["../../etc"]]),
    ("slash", [["accel-1/x"]]),
    ("NUL byte", [["accel-1\u{0}"]]),
    ("unicode", [["accel-①"]]),
    ("1 MiB ID", [["<1 MiB>"]]),
    ("duplicate", [["accel-1", "accel-1"]]),
    ("more than maxPerContainer", [["accel-1", "accel-2"]]),
    ("same device for two containers", [["accel-1"], ["accel-1"]]),
    ("another resource's ID", [["other-1"]]),
  ])
  func badAllocateIsInvalidArgumentAndChangesNothing(_ name: String, _ ids: [[String]]) async throws {
    // Built here rather than passed in, so the test's name stays printable.
    let ids = ids.map { $0.map { $0 == "<1 MiB>" ? String(repeating: "a", count: 1 << 20) : $0 } }
    try await DaemonHarness.using(try await DaemonHarness.start()) { harness in
      try await harness.registered()

      let error = await #expect(throws: RPCError.self, "\(name)") {
        try await harness.kubelet.admit(harness.resource, ids)
      }
      #expect(error?.code == .invalidArgument)
      #expect((error?.message.utf8.count ?? 0) < 512, "the error message stays bounded")
      // Nothing was created for a rejected request, and the daemon keeps serving.
      #expect(!FileManager.default.fileExists(atPath: harness.config.runDir + "/accel"))
      let reply = try await harness.kubelet.admit(harness.resource, [["accel-0"]])
      #expect(reply.containerResponses.count == 1)
      let state = await harness.kubelet.state
      #expect(state.plugins[harness.resource]?.streamOpen == true)
    }
  }

  @Test func preferredAllocationHonoursMustIncludeAndSize() async throws {
    try await DaemonHarness.using(try await DaemonHarness.start()) { harness in
      try await harness.registered()
      let client = try await harness.kubelet.client(harness.resource)

      let reply = try await client.getPreferredAllocation(.with {
        $0.containerRequests = [.with {
          $0.availableDeviceIds = ["accel-7", "accel-2", "accel-4"]
          $0.mustIncludeDeviceIds = ["accel-4"]
          $0.allocationSize = 1
        }]
      })
      #expect(reply.containerResponses.map(\.deviceIds) == [["accel-4"]])

      // Spread (the default): a slot that was just allocated goes to the back of the line.
      _ = try await harness.kubelet.admit(harness.resource, [["accel-0"]])
      let next = try await client.getPreferredAllocation(.with {
        $0.containerRequests = [.with {
          $0.availableDeviceIds = ["accel-0", "accel-1"]
          $0.allocationSize = 1
        }]
      })
      #expect(next.containerResponses.map(\.deviceIds) == [["accel-1"]])

      await #expect(throws: RPCError.self) {
        _ = try await client.getPreferredAllocation(.with {
          $0.containerRequests = [.with {
            $0.availableDeviceIds = ["accel-0"]
            $0.allocationSize = 2
          }]
        })
      }
    }
  }

  @Test func preStartContainerChecksTheDevices() async throws {
    try await DaemonHarness.using(try await DaemonHarness.start()) { harness in
      try await harness.registered()
      let client = try await harness.kubelet.client(harness.resource)

      _ = try await client.preStartContainer(.with { $0.devicesIds = ["accel-1"] })
      let error = await #expect(throws: RPCError.self) {
        _ = try await client.preStartContainer(.with { $0.devicesIds = ["nope"] })
      }
      #expect(error?.code == .invalidArgument)
    }
  }

  @Test func healthChangesArePushedOnTheOpenStream() async throws {
    try await DaemonHarness.using(try await DaemonHarness.start()) { harness in
      try await harness.registered()

      try await harness.manager.setHealth(deviceID: "accel-2", healthy: false, reason: "test")
      let down = try await harness.kubelet.wait(for: "accel-2 unhealthy") { $0.healthy("vaccel.org/accel") == 7 }
      #expect(down.plugins["vaccel.org/accel"]?.devices.first { $0.id == "accel-2" }?.health == "Unhealthy")

      try await harness.manager.setHealth(deviceID: "accel-2", healthy: true)
      _ = try await harness.kubelet.wait(for: "accel-2 healthy again") { $0.healthy("vaccel.org/accel") == 8 }
    }
  }

  @Test func waitsForAKubeletThatIsNotThereYet() async throws {
    try await DaemonHarness.using(try await DaemonHarness.start(kubeletFirst: false)) { harness in
      // The daemon serves its socket even without a kubelet, and registers once one appears.
      try await waitForFile(harness.socketPath)
      #expect(await harness.kubelet.state.registrations == 0)

      try await harness.kubelet.start()
      try await harness.registered()
    }
  }

  @Test func reregistersAfterThreeKubeletRestartsInARow() async throws {
    // recheckInterval is an hour here: only inotify can bring the daemon back in time.
    try await DaemonHarness.using(try await DaemonHarness.start()) { harness in
      try await harness.registered(1)

      for restart in 1...3 {
        try await harness.kubelet.restart()
        let state = try await harness.registered(restart + 1)
        #expect(state.registrations == restart + 1)
      }
      _ = try await harness.kubelet.admit(harness.resource, [["accel-0"]])
    }
  }

  @Test func periodicRecheckRecoversWithoutInotify() async throws {
    try await DaemonHarness.using(try await DaemonHarness.start(
      configure: { $0.kubelet.recheckInterval = .milliseconds(100) }, watcher: SilentWatcher())) { harness in
      try await harness.registered(1)

      try await harness.kubelet.restart()
      try await harness.registered(2)
    }
  }

  @Test func acceptsTheLegacySocketPathAuthority() async throws {
    try await DaemonHarness.using(try await DaemonHarness.start(authority: .socketPath)) { harness in
      try await harness.registered()
      let reply = try await harness.kubelet.admit(harness.resource, [["accel-1"]])
      #expect(reply.containerResponses.count == 1)
    }
  }

  @Test func servesEachResourceOnItsOwnSocket() async throws {
    try await DaemonHarness.using(try await DaemonHarness.start(configure: {
      $0.resources = [
        ResourceConfig(name: "vaccel.org/accel", slots: 2, agent: DaemonHarness.agent),
        ResourceConfig(name: "vaccel.org/accel-vm", slots: 3, transport: .vsock, agents: .runtime),
      ]
    })) { harness in
      let state = try await harness.kubelet.wait(for: "both resources") {
        $0.healthy("vaccel.org/accel") == 2 && $0.healthy("vaccel.org/accel-vm") == 3
      }
      #expect(state.plugins["vaccel.org/accel-vm"]?.request.endpoint == "vaccel-accel-vm.sock")

      // The sandbox runtime starts its own agents: the container learns its slot, no endpoint.
      let reply = try await harness.kubelet.admit("vaccel.org/accel-vm", [["accel-vm-2"]])
      #expect(reply.containerResponses.first?.annotations["vaccel.org/slots"] == "accel-vm-2")
      #expect(reply.containerResponses.first?.envs.isEmpty == true)
      #expect(reply.containerResponses.first?.mounts.isEmpty == true)
    }
  }

  @Test func shutdownEndsTheStreamAndRemovesTheSocket() async throws {
    let harness = try await DaemonHarness.start()
    try await harness.registered()
    #expect(FileManager.default.fileExists(atPath: harness.socketPath))

    try await harness.stop()
    let state = try await harness.kubelet.wait(for: "the stream to end") {
      $0.plugins["vaccel.org/accel"]?.streamOpen == false
    }
    #expect(state.plugins["vaccel.org/accel"]?.streamError == nil, "a clean end, not an error")
    #expect(!FileManager.default.fileExists(atPath: harness.socketPath))
    await harness.kubelet.stop()
  }

  /// A second daemon on the same folders (an operator's `kubectl exec … vaccel-device-plugin`)
  /// fails before it recovers, checkpoints, publishes or binds anything, naming the owner.
  @Test func aSecondInstanceFailsAtOnceAndTouchesNothing() async throws {
    try await DaemonHarness.using(try await DaemonHarness.start()) { first in
      try await first.registered()
      let reply = try await first.kubelet.admit(first.resource, [["accel-2"]])
      let held = try await first.manager.waitForSlot("accel-2", timeout: .seconds(20)) { $0.agent.phase == .ready }
      let sockets = [first.socketPath, first.config.statusSocket]
      let before = sockets.map(Directories.identity(of:))

      let second = try NodeDaemon(config: first.config, logger: .test, podResources: FakePodResources())
      let error = await #expect(throws: (any Error).self) { try await second.run(gracefulShutdownSignals: []) }
      #expect("\(error.map { "\($0)" } ?? "")" == "another vaccel-device-plugin (pid \(getpid())) owns \(first.config.stateDir)")

      let after = sockets.map(Directories.identity(of:))
      for (old, new) in zip(before, after) { #expect(old != nil && new?.isSameFile(as: old!) == true) }
      let now = await first.manager.slotStates[2]
      #expect(now.agent.pid == held.agent.pid && now.agent.restarts == 0 && now.allocated)
      #expect(FileManager.default.fileExists(atPath: try reply.hostSocket))
      _ = try await first.kubelet.admit(first.resource, [["accel-1"]])
    }
  }
}

/// Waits for a file to appear, on inotify events of its folder.
func waitForFile(_ path: String, timeout: Duration = .seconds(20)) async throws {
  let folder = (path as NSString).deletingLastPathComponent
  let changes = try InotifyWatcher().changes(in: folder)
  if FileManager.default.fileExists(atPath: path) { return }
  try await withThrowingTaskGroup(of: Void.self) { group in
    group.addTask {
      for await _ in changes where FileManager.default.fileExists(atPath: path) { return }
    }
    group.addTask {
      try await Task.sleep(for: timeout)
      throw TimedOut(what: path)
    }
    try await group.next()
    group.cancelAll()
  }
}
