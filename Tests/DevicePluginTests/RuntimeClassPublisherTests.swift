@testable import DevicePlugin
import Foundation
import Testing
import VaccelConfig
import VaccelManifests
import Yams

@Suite("k3s auto-deploy of RuntimeClasses")
struct RuntimeClassPublisherTests {
  func config(_ directory: TestDirectory) -> DaemonConfig {
    var config = DaemonHarness.config(in: directory, resources: [
      ResourceConfig(name: "vaccel.org/accel"),
      ResourceConfig(name: "vaccel.org/accel-vm", transport: .vsock),
      ResourceConfig(name: "vaccel.org/accel-fc", agents: .runtime),
    ])
    config.k3sAutoDeployDir = directory.sub("server/manifests")
    return config
  }

  @Test func writesTheRuntimeClassesWhereK3sAppliesThem() throws {
    let directory = try TestDirectory()
    let config = config(directory)
    try FileManager.default.createDirectory(atPath: config.k3sAutoDeployDir, withIntermediateDirectories: true)
    let path = config.k3sAutoDeployDir + "/" + RuntimeClassPublisher.fileName
    #expect(RuntimeClassPublisher.publish(config: config, logger: .test) == .written(path: path, classes: 2))
    let objects = try Yams.load_all(yaml: try String(contentsOfFile: path, encoding: .utf8)).compactMap { $0 as? [String: Any] }
    #expect(objects.map { ($0["metadata"] as? [String: Any])?["name"] as? String } == ["kata-qemu-vaccel", "kata-fc-vaccel"])
    #expect(objects.map { $0["handler"] as? String } == ["kata-qemu", "kata-fc-vaccel"])
    // Nothing but the file itself: the temp file was renamed over it.
    #expect(try FileManager.default.contentsOfDirectory(atPath: config.k3sAutoDeployDir) == [RuntimeClassPublisher.fileName])
  }

  @Test func aNodeWithoutAK3sServerIsLeftAlone() throws {
    let directory = try TestDirectory()
    let config = config(directory)
    #expect(RuntimeClassPublisher.publish(config: config, logger: .test) == .noServerHere)
    #expect(!FileManager.default.fileExists(atPath: config.k3sAutoDeployDir))
    var off = config
    off.k3sAutoDeployDir = ""
    #expect(RuntimeClassPublisher.publish(config: off, logger: .test) == nil)
  }
}
