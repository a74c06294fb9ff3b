@testable import DevicePlugin
import Foundation
import NodeSupport
import Testing
import VaccelConfig

/// The registration state machine alone, against the fake kubelet: one registration per
/// kubelet.sock.
@Suite("Registration loop")
struct RegistrationLoopTests {
  @Test func oneRegistrationPerKubeletSocketWhateverHappensToItsMetadata() async throws {
    let directory = try TestDirectory()
    let kubelet = FakeKubelet(directory: directory.sub("dp"))
    try await kubelet.start()
    let config = KubeletConfig(devicePluginDir: directory.sub("dp"), podResourcesSocket: directory.sub("pr.sock"))
    let manager = DeviceManager(resource: ResourceConfig(agents: .runtime), logger: .test)
    let plugin = ResourcePlugin(
      manager: manager, kubelet: config, registrar: GRPCKubeletRegistrar(), watcher: SilentWatcher(), logger: .test)
    let loop = RegistrationLoop(plugin: plugin)

    #expect(await loop.reconcile() == nil)
    _ = try await kubelet.wait(for: "registration") { $0.registrations == 1 }

    // A chmod (or a relabel, a hard link) changes the socket's ctime, not the socket.
    chmod(config.registrationSocket, 0o600)
    #expect(await loop.reconcile() == nil)
    #expect(await loop.reconcile() == nil)
    #expect(loop.registrations == 1)
    #expect(await kubelet.state.registrations == 1)

    // A new kubelet.sock (a kubelet restart) is registered with once.
    try await kubelet.restart()
    #expect(await loop.reconcile() == nil)
    #expect(await loop.reconcile() == nil)
    _ = try await kubelet.wait(for: "registration after the restart") { $0.registrations == 2 }
    #expect(loop.registrations == 2)

    await loop.stop()
    await kubelet.stop()
  }
}
