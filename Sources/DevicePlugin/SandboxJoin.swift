public import CRIClient

/// The join "slot → holder pod → its VM sandbox → the sandbox's hybrid-vsock socket" for
/// hybrid-vsock resources: pod-resources says who holds a slot, the runtime's CRI which
/// sandbox that pod runs in, and the socket templates where its VMM keeps the socket.
public struct SandboxJoin: Sendable {
  public let locator: any SandboxLocating
  let podResources: any PodResourcesListing
  let lookupTimeout: Duration
  /// How often PreStartContainer asks again while the sandbox or its socket is not there yet:
  /// the VMM creates its socket while the kubelet's RunPodSandbox runs, and nothing announces it.
  static let retryInterval: Duration = .milliseconds(50)

  public init(locator: any SandboxLocating, podResources: any PodResourcesListing, lookupTimeout: Duration) {
    self.locator = locator
    self.podResources = podResources
    self.lookupTimeout = lookupTimeout
  }

  /// A pod's VM sandbox and its hybrid-vsock socket.
  public struct Place: Sendable, Equatable {
    public var id: String
    public var socket: String
  }

  /// Where the holder of `slotID` runs, looked for until `lookupTimeout`; UNAVAILABLE naming
  /// what was tried (the holder, the CRI socket, the paths) when it is not found in time.
  func locate(slotID: String, resource: String, holder known: Holder?) async throws(PluginError) -> Place {
    let deadline = ContinuousClock.now + lookupTimeout
    var problem = "not looked for yet"
    repeat {
      var holder = known
      if holder == nil {
        do {
          holder = try await podResources.list()[resource]?[slotID]
          if holder == nil { problem = "pod-resources lists no holder of \(slotID)" }
        } catch {
          problem = "pod-resources did not answer: \(error)"
        }
      }
      if let holder {
        do {
          let pod = "\(holder.namespace)/\(holder.pod)"
          if let sandbox = try await locator.currentSandbox(namespace: holder.namespace, pod: holder.pod) {
            switch locator.vmSocket(of: sandbox.id) {
            case .found(let socket): return Place(id: sandbox.id, socket: socket)
            case .missing(let tried):
              problem = "sandbox \(sandbox.id) of pod \(pod) (runtime handler '\(sandbox.runtimeHandler)') has no hybrid-vsock socket at "
                + "\(tried.joined(separator: ", ")): is its RuntimeClass a hybrid-vsock one (kata-fc, kata-clh, kata-dragonball)? "
                + "Otherwise set sandboxes.vmSockets"
            }
          } else {
            problem = "the container runtime at \(locator.runtimeDescription) lists no ready sandbox of pod \(pod)"
          }
        } catch {
          problem = "\(error)"
        }
      }
      guard ContinuousClock.now < deadline, (try? await Task.sleep(for: Self.retryInterval)) != nil else { break }
    } while ContinuousClock.now < deadline
    throw .unavailable("\(slotID): no VM sandbox found within \(lookupTimeout): \(problem)")
  }

  /// Every pod's current sandbox (the newest ready one), by "namespace/pod"; nil when the
  /// runtime does not answer (then nothing is concluded from its silence).
  func currentSandboxes() async -> [String: PodSandboxInfo]? {
    guard let all = try? await locator.readySandboxes(namespace: nil, pod: nil) else { return nil }
    var newest: [String: PodSandboxInfo] = [:]
    for sandbox in all {
      let key = "\(sandbox.namespace)/\(sandbox.pod)"
      if let seen = newest[key], seen.createdAt >= sandbox.createdAt { continue }
      newest[key] = sandbox
    }
    return newest
  }
}
