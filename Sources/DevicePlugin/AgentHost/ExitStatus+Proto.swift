import AgentHostAPI
import VaccelAgents

typealias AgentHostV1 = Vaccel_Agenthost_V1_AgentHost

extension ExitStatus {
  init(_ message: Vaccel_Agenthost_V1_ExitStatus) {
    switch message.how {
    case .exitCode(let code): self = .exited(code)
    case .signal(let signal): self = .signaled(signal)
    case .unknown, nil: self = .unknown
    }
  }

  var message: Vaccel_Agenthost_V1_ExitStatus {
    var message = Vaccel_Agenthost_V1_ExitStatus()
    switch self {
    case .exited(let code): message.how = .exitCode(code)
    case .signaled(let signal): message.how = .signal(signal)
    case .unknown: message.how = .unknown(true)
    }
    return message
  }
}
