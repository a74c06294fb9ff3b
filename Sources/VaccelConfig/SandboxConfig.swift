#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import NodeSupport

/// How the daemon finds a pod's VM sandbox (transport `hybrid-vsock`): the container runtime's
/// CRI socket, asked which sandbox a pod runs in, and where that sandbox's VMM keeps its
/// hybrid-vsock socket.
public struct SandboxConfig: Sendable, Equatable {
  /// The runtime's CRI sockets tried in order; the first that exists is asked. One entry pins it.
  public var criSockets: [String]
  /// Where a sandbox's hybrid-vsock socket may be, `{id}` standing for the sandbox id; the
  /// first that exists is the one. Defaults: Kata's layouts, read from its sources (README,
  /// "VM sandboxes").
  public var vmSockets: [String]
  /// How long PreStartContainer looks for the holder's sandbox and its socket (the VMM may
  /// still be creating it) before it answers UNAVAILABLE. Counted within the kubelet's 30 s,
  /// together with `agent.readyTimeout`.
  public var lookupTimeout: Duration

  public static let idPlaceholder = "{id}"

  public static let defaultCRISockets = [
    "/run/containerd/containerd.sock",  // containerd
    "/run/k3s/containerd/containerd.sock",  // k3s
    "/var/run/crio/crio.sock",  // CRI-O
  ]

  public static let defaultVMSockets = [
    // runtime-rs (Rust shim): Dragonball, and Firecracker without the jailer
    // (KATA_PATH/<id>/root/kata.hvsock).
    "/run/kata/{id}/root/kata.hvsock",
    // runtime-rs, Firecracker under the jailer (KATA_PATH/firecracker/<id>/root/kata.hvsock).
    "/run/kata/firecracker/{id}/root/kata.hvsock",
    // Go runtime, Firecracker (jailer root /run/vc/firecracker/<id>/root).
    "/run/vc/firecracker/{id}/root/kata.hvsock",
    // Go runtime, Cloud Hypervisor (VMStorePath /run/vc/vm, clhSocket "clh.sock").
    "/run/vc/vm/{id}/clh.sock",
  ]

  public init(
    criSockets: [String] = SandboxConfig.defaultCRISockets, vmSockets: [String] = SandboxConfig.defaultVMSockets,
    lookupTimeout: Duration = .seconds(10)
  ) {
    self.criSockets = criSockets
    self.vmSockets = vmSockets
    self.lookupTimeout = lookupTimeout
  }

  /// The folders under which the daemon must see the runtime's sandboxes (mounted at the same
  /// path in the DaemonSet): each template's part before `{id}`.
  public var vmSocketRoots: [String] {
    var roots: [String] = []
    for template in vmSockets {
      guard let range = template.firstUTF8Range(of: Self.idPlaceholder) else { continue }
      var root = String(template[..<range.lowerBound])
      while root.count > 1 && root.hasSuffix("/") { root.removeLast() }
      if !roots.contains(root) { roots.append(root) }
    }
    return roots
  }
}
