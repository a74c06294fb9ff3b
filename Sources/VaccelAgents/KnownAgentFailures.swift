import NodeSupport

/// Failures of the real agent that deserve a name rather than a restart count.
enum KnownAgentFailures {
  static func explain(_ line: String) -> String? {
    if line.includes("EOPNOTSUPP") && line.includes("Ttrpc") {
      return "the agent's ttrpc-rust (< 0.8.6) cannot listen on unix sockets under Linux >= 6.12.9 "
        + "(SO_REUSEPORT gives EOPNOTSUPP): upgrade vaccel-rpc-agent"
    }
    if line.includes("panicked") {
      return String(line.suffix(300))
    }
    return nil
  }
}
