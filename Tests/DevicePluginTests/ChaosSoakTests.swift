import Foundation
import Testing

/// The chaos soak's CI size, on the real binaries (RELIABILITY.md has the long run).
@Suite("Chaos soak (short)")
struct ChaosSoakTests {
  static var chaos: String {
    URL(fileURLWithPath: Fixtures.standinAgent).deletingLastPathComponent().path + "/vaccel-chaos"
  }

  @Test func theShortSoakHoldsEveryInvariant() async throws {
    let result = try await ChildProcess.run(Self.chaos, ["--short"])
    #expect(result.status == 0, "\(result.output)\n\(result.error)")
    #expect(result.output.contains("violations: 0"))
    #expect(result.output.contains("daemon SIGKILLs 3"))
  }

  /// The checker can fail: a pod the daemon never allocated is reported.
  @Test func theCheckerReportsAViolation() async throws {
    let result = try await ChildProcess.run(
      Self.chaos, ["--admissions", "6", "--agent-kills", "1", "--agent-hangs", "0", "--kubelet-restarts", "0", "--daemon-kills", "0", "--pod-resources-faults", "0", "--control"])
    #expect(result.status == 1)
    #expect(result.output.contains("phantom") || result.output.contains("is held but the daemon reports"), "\(result.output)")
  }
}
