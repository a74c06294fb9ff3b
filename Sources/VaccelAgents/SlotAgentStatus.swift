#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// One slot's agent as status and health see it.
public struct SlotAgentStatus: Sendable, Equatable {
  public enum Phase: String, Sendable, Equatable {
    /// No agent, none wanted (a free slot outside the warm pool).
    case stopped
    case starting
    case ready
    /// Exited or failed; waiting to start again.
    case backoff
    case stopping
    /// The node cannot run the agent (binary or plugins missing).
    case unavailable
  }

  public var phase: Phase = .stopped
  public var pid: Int32?
  /// Unexpected exits since the daemon started.
  public var restarts = 0
  /// Failures in a row (reset after a healthy period); 3 or more is a crash loop.
  public var consecutiveFailures = 0
  public var startedAt: Date?
  /// The last failure, until the agent has been stable for `restartBackoff.resetAfter`.
  public var lastError: String? {
    didSet { lastErrorAt = lastError == nil ? nil : Date() }
  }
  /// When `lastError` was last set: a crash loop keeps it fresh, an old one shows its age.
  public private(set) var lastErrorAt: Date?
  /// The running agent has been handed to a holder: it must be recycled before another.
  public var handedOut = false
  /// Holders served so far; every hand-out to a new holder gets a fresh process.
  public var generation = 0
  /// An agent is wanted on this slot (it is held, or kept warm).
  public var wanted = false
  /// The agent went away unexpectedly and is not back yet.
  public var down = false
  /// Where the current allocation's agent listens (unix: nil between allocations).
  public var endpoint: String?
  /// hybrid-vsock: the holder's VM sandbox (CRI id, nil until known) and its hybrid-vsock socket.
  public var sandboxID: String?
  public var sandboxSocket: String?

  public init() {}

  public var crashLooping: Bool { consecutiveFailures >= 3 }

  /// Unhealthy while the node cannot run agents, or while a wanted agent is down or
  /// crash-looping (a crash-looping agent that is briefly up does not count as back).
  public var healthy: Bool { phase != .unavailable && !(wanted && (down || crashLooping)) }

  public var unhealthyReason: String? {
    guard !healthy else { return nil }
    if crashLooping { return "crash-looping: \(lastError ?? "agent keeps exiting")" }
    return lastError ?? "agent down"
  }
}

/// What a slot's supervisor reports as it goes, for metrics.
public enum AgentEvent: Sendable, Equatable {
  case started
  case ready(after: Duration)
  /// An unexpected exit (or a start that never got ready); `restarting` when another start follows.
  case exited(ExitStatus?, restarting: Bool)
  /// A ready agent stopped answering its liveness probe and was killed (a restart follows).
  case unresponsive
}
