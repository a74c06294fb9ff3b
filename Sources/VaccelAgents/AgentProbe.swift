#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
public import VaccelConfig
public import VaccelRPC
import VaccelAgentAPI

/// Decides whether an agent is ready, as `ProbeMode` says: a ttrpc session round trip
/// (`CreateSession` + `DestroySession`), an accepted connection, or (checked by the caller) a
/// live process.
public struct AgentProbe: Sendable {
  public var mode: ProbeMode
  public var timeout: Duration
  public var service: String

  public init(mode: ProbeMode, timeout: Duration, service: String = VaccelAgentService.sync) {
    self.mode = mode
    self.timeout = timeout
    self.service = service
  }

  /// Throws what is wrong; returns when the agent at `address` is ready.
  public func check(_ address: AgentAddress) async throws {
    let service = self.service
    switch mode {
    case .process:
      return
    case .connect:
      try await TTRPCClient.withConnection(to: address, timeout: timeout) { _ in }
    case .session:
      _ = try await Self.sessionRoundTrip(address, timeout: timeout, service: service)
    }
  }

  /// `CreateSession` then `DestroySession` of that session: what every vAccel call starts with.
  /// Returns the session's id (the probe, `vaccelctl probe`, the demo).
  public static func sessionRoundTrip(
    _ address: AgentAddress, timeout: Duration, service: String = VaccelAgentService.sync
  ) async throws -> Int64 {
    try await TTRPCClient.withConnection(to: address, timeout: timeout) { connection in
      let created = try await connection.call(
        service: service, method: VaccelAgentService.Method.createSession,
        request: Vaccel_Session_CreateRequest(), as: Vaccel_Session_CreateResponse.self)
      _ = try await connection.call(
        service: service, method: VaccelAgentService.Method.destroySession,
        request: Vaccel_Session_DestroyRequest.with { $0.sessionID = created.sessionID },
        as: Vaccel_Empty_Empty.self)
      return created.sessionID
    }
  }
}
