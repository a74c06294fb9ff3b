import ArgumentParser
import Foundation

/// The chaos soak (issue 6, RELIABILITY.md): the real daemon binary against the kubelet
/// emulation and stand-in agents, through pod churn, agent and daemon SIGKILLs, kubelet
/// restarts and pod-resources failures, with every invariant checked after every step.
///
///   swift build -c release && .build/release/vaccel-chaos            (the long run)
///   .build/debug/vaccel-chaos --short                                (what CI runs)
@main
struct VaccelChaos: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "vaccel-chaos",
    abstract: "Soak the daemon with faults; exit 1 on any invariant violation.")

  @Option(help: "Pod admissions (each pod is removed again later).") var admissions = 2_000
  @Option(help: "Agents SIGKILLed.") var agentKills = 300
  @Option(help: "Agents frozen (SIGSTOP): hung, the liveness probe must replace them.") var agentHangs = 30
  @Option(help: "Kubelet restarts (every socket in the folder wiped).") var kubeletRestarts = 20
  @Option(help: "Daemon SIGKILLs and restarts (half of them right after an allocation, while the checkpoint is written).") var daemonKills = 10
  @Option(help: "Periods of pod-resources failing (UNAVAILABLE, RESOURCE_EXHAUSTED).") var podResourcesFaults = 20
  @Option(help: "Slots of the resource.") var slots = 8
  @Option(help: "Seed for the event order.") var seed: UInt64 = 1
  @Flag(help: "At the end, claim a slot the daemon never allocated: the checker must report it (its own control).") var control = false
  @Flag(help: "The CI size: 120 admissions, 20 agent kills, 3 hangs, 3 kubelet restarts, 3 daemon kills, 3 pod-resources faults.") var short = false

  func run() async throws {
    var plan = ChaosPlan(
      admissions: admissions, agentKills: agentKills, agentHangs: agentHangs, kubeletRestarts: kubeletRestarts,
      daemonKills: daemonKills, podResourcesFaults: podResourcesFaults, slots: slots, seed: seed)
    if short {
      plan = ChaosPlan(admissions: 120, agentKills: 20, agentHangs: 3, kubeletRestarts: 3, daemonKills: 3, podResourcesFaults: 3, slots: slots, seed: seed)
    }
    plan.control = control
    let binaries = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
    let report = try await ChaosRun(plan: plan, binaries: binaries).run()
    print(report.summary)
    if !report.violations.isEmpty { throw ExitCode(1) }
  }
}

struct ChaosPlan: Sendable {
  var admissions: Int
  var agentKills: Int
  var agentHangs: Int
  var kubeletRestarts: Int
  var daemonKills: Int
  var podResourcesFaults: Int
  var slots: Int
  var seed: UInt64
  var control = false

  enum Event: Sendable { case admit, agentKill, agentHang, kubeletRestart, daemonKill, podResourcesFault }

  /// Every event once, in a seeded random order.
  func events() -> [Event] {
    var rng = SplitMix(state: seed)
    var all = Array(repeating: Event.admit, count: admissions) + Array(repeating: .agentKill, count: agentKills)
      + Array(repeating: .agentHang, count: agentHangs)
      + Array(repeating: .kubeletRestart, count: kubeletRestarts) + Array(repeating: .daemonKill, count: daemonKills)
      + Array(repeating: .podResourcesFault, count: podResourcesFaults)
    all.shuffle(using: &rng)
    return all
  }
}

struct SplitMix: RandomNumberGenerator {
  var state: UInt64
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
