import AgentHostAPI
import GRPCCore
import GRPCNIOTransportHTTP2Posix

extension Doctor {
  /// With `agentHost.socket` set, the daemon starts agents only through the agent host: it must
  /// answer, or no pod on the node gets an agent (and a starting daemon gives up after 60 s).
  func agentHost() async -> Check {
    let socket = config.agentHostSocket
    let name = "agent host"
    do {
      let transport = try HTTP2ClientTransport.Posix(
        target: .unixDomainSocket(path: socket, authority: "localhost"), transportSecurity: .plaintext)
      let listed = try await withGRPCClient(transport: transport) { client in
        var options = CallOptions.defaults
        options.timeout = .seconds(5)
        return try await Vaccel_Agenthost_V1_AgentHost.Client(wrapping: client).list(
          Vaccel_Agenthost_V1_ListRequest(), options: options)
      }
      let count = listed.processes.count
      return Check(
        name: name, outcome: .pass,
        detail: "\(socket): version \(listed.version), pid \(listed.hostPid), \(count) agent\(count == 1 ? "" : "s") running")
    } catch {
      let reason = (error as? RPCError).map { "\($0.code): \($0.message)" } ?? "\(error)"
      return Check(
        name: name, outcome: .fail,
        detail: "\(socket): \(reason); is the vaccel-agent-host pod running on this node? Without it no agent starts")
    }
  }
}
