import Foundation
import Testing
import VaccelCtlKit
@testable import VaccelDemo

@Suite("vaccelctl demo")
struct DemoTests {
  @Test func threePodsReachAgentsOfTheirOwnAndEverythingIsCleanedUp() async throws {
    let lines = Lines()
    let demo = Demo(standinBinary: Repository.built("vaccel-standin-agent"), agentBinary: Repository.built("vaccel-standin-agent")) {
      lines.append($0)
    }
    let report: Demo.Report
    do {
      report = try await demo.run()
    } catch {
      Issue.record("the demo failed: \(error)\nits output:\n\(lines.text)")
      return
    }
    #expect(report.sessions.count == 4)
    #expect(report.sessions.values.allSatisfy { $0 > 0 })
    #expect(report.pidBefore != nil && report.pidAfter != report.pidBefore)
    #expect(report.pidNext != nil && report.pidNext != report.pidBefore, "the next pod's agent never served the freed pod")
    let output = lines.text
    #expect(output.contains("demo-1 got accel-"))
    #expect(output.contains("VACCEL_RPC_ADDRESS=unix:///var/run/vaccel/vaccel.sock"))
    #expect(output.contains("Registered"))
    #expect(output.contains("default/demo-1 (app)"))
    #expect(output.contains("is free again"))
    #expect(output.contains("pod demo-4 got the recycled"))
    #expect(!FileManager.default.fileExists(atPath: report.folder))
    // No agent of the demo outlives it.
    let survivors = try FileManager.default.contentsOfDirectory(atPath: "/proc").filter { entry in
      guard Int32(entry) != nil, let cmdline = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { return false }
      return String(decoding: cmdline, as: UTF8.self).contains(report.folder)
    }
    #expect(survivors.isEmpty, "processes still using \(report.folder): \(survivors)")
  }

  @Test func aMissingAgentIsAClearError() async throws {
    let demo = Demo(standinBinary: "/x/vaccel-standin-agent", agentBinary: "/nonexistent/vaccel-rpc-agent") { _ in }
    let error = await #expect(throws: CtlError.self) { _ = try await demo.run() }
    #expect(error?.description == "--agent /nonexistent/vaccel-rpc-agent does not exist")
    let unbuilt = Demo(standinBinary: "/nonexistent/vaccel-standin-agent") { _ in }
    if Tool.which("vaccel-rpc-agent") == nil {
      let missing = await #expect(throws: CtlError.self) { _ = try await unbuilt.run() }
      #expect(missing?.description.contains("build it first with `swift build`") == true)
    }
  }

  /// Something that is no agent fails as it fails, not over a vAccel plugin it never needed.
  @Test func anAgentThatDoesNotServeSaysHowItFailed() async throws {
    let demo = Demo(standinBinary: "/x/vaccel-standin-agent", agentBinary: "/bin/false") { _ in }
    let error = await #expect(throws: CtlError.self) { _ = try await demo.run() }
    #expect(error?.description.contains("exited with code 1") == true, "\(String(describing: error))")
    #expect(error?.description.contains("libvaccel") == false)
  }

  @Test func theRealAgentIsPreferredWhenOnPath() throws {
    let scratch = try Scratch()
    defer { scratch.remove() }
    if Tool.which("vaccel-rpc-agent") == nil {
      #expect(Demo.pickAgent(searchPath: scratch.path, standin: "/x/standin") == ("/x/standin", true))
    }
    let agent = try scratch.write("vaccel-rpc-agent", "#!/bin/sh\n")
    try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: agent)
    let picked = Demo.pickAgent(searchPath: scratch.path, standin: "/x/standin")
    #expect(picked.binary == agent && picked.standin == false, "\(picked)")
  }
}

final class Lines: @unchecked Sendable {
  private let lock = NSLock()
  private var lines: [String] = []
  func append(_ line: String) { lock.withLock { lines.append(line) } }
  var text: String { lock.withLock { lines.joined(separator: "\n") } }
}
