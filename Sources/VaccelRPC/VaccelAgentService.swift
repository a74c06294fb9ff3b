/// Names on the agent's ttrpc service (vaccel-contract.md §3).
public enum VaccelAgentService {
  /// The default (sync) build of vaccel-rpc-agent.
  public static let sync = "vaccel.sync.agent.AgentService"
  /// The async build.
  public static let asynchronous = "vaccel.asynchronous.agent.AgentService"

  public enum Method {
    public static let createSession = "CreateSession"
    public static let destroySession = "DestroySession"
    public static let imageClassification = "ImageClassification"
  }
}

/// gRPC status codes as ttrpc carries them.
public enum TTRPCCode {
  public static let ok: Int32 = 0
  public static let invalidArgument: Int32 = 3
  public static let notFound: Int32 = 5
  public static let unavailable: Int32 = 14
  public static let unimplemented: Int32 = 12
  public static let `internal`: Int32 = 13
}
