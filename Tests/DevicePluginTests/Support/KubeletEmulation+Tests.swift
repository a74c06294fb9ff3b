import DevicePlugin
import KubeletAPI
import Testing
@_exported import KubeletEmulation

/// The tests' names for the library's kubelet doubles.
typealias FakeKubelet = KubeletEmulator
typealias FakePodResourcesServer = PodResourcesEmulator

extension PodResourcesEmulator {
  func set(_ resource: String, holders devices: [String: Holder]) {
    set(resource, devices.mapValues { PodContainer(namespace: $0.namespace, pod: $0.pod, container: $0.container) })
  }
}

extension V1beta1_AllocateResponse {
  /// The host folder mounted into the first container (unix transport): the allocation's own.
  var hostFolder: String {
    get throws { try #require(containerResponses.first?.mounts.first?.hostPath) }
  }

  /// The agent socket the first container reaches, as seen on the host.
  var hostSocket: String {
    get throws { try hostFolder + "/vaccel.sock" }
  }
}
