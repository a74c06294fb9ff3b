import DevicePlugin
@_exported import KubeletEmulation

/// The tests' names for the library's kubelet doubles.
typealias FakeKubelet = KubeletEmulator
typealias FakePodResourcesServer = PodResourcesEmulator

extension PodResourcesEmulator {
  func set(_ resource: String, holders devices: [String: Holder]) {
    set(resource, devices.mapValues { PodContainer(namespace: $0.namespace, pod: $0.pod, container: $0.container) })
  }
}
