import Foundation
import VaccelAgents
import VaccelRPC

/// `vaccelctl probe`: one vAccel session round trip (CreateSession, DestroySession) with the
/// agent at an address, from wherever an operator runs it: a node, a pod, a VM guest. What the
/// vAccel RPC plugin does first on every call, without any plugin or model.
public enum EndpointProbe {
  /// Where a pod's agent is, as the daemon told the pod.
  public static let addressEnvironment = ["VACCEL_RPC_ADDRESS", "VACCEL_RPC_ADDR"]

  public struct Result: Sendable {
    public var address: String
    public var sessionID: Int64
    public var elapsed: Duration
  }

  /// The address given, else the pod's own from its environment; `.usage` when neither parses.
  public static func address(_ given: String?, environment: [String: String]) throws(CtlError) -> AgentAddress {
    guard let text = given ?? addressEnvironment.lazy.compactMap({ environment[$0] }).first else {
      throw .usage("no address given and VACCEL_RPC_ADDRESS is not set; e.g. vaccelctl probe unix:///var/run/vaccel/vaccel.sock or vsock://2:2048")
    }
    do {
      return try AgentAddress(parsing: text)
    } catch {
      throw .usage("\(error)")
    }
  }

  /// One round trip, bounded by `timeout`; `.failed` says what went wrong.
  public static func run(_ address: AgentAddress, timeout: Duration, service: String = VaccelAgentService.sync) async throws(CtlError) -> Result {
    let started = ContinuousClock.now
    do {
      let session = try await AgentProbe.sessionRoundTrip(address, timeout: timeout, service: service)
      return Result(address: address.description, sessionID: session, elapsed: ContinuousClock.now - started)
    } catch {
      throw .failed("no vAccel session with the agent at \(address): \(error)")
    }
  }
}
