import Foundation
import Testing
import VaccelAgentAPI
import VaccelRPC

/// The stand-in must fail the way the real agent does, or the daemon's handling of those
/// failures is tested against fiction (vaccel-contract.md §1).
@Suite("Stand-in agent behaves like vaccel-rpc-agent")
struct StandinAgentTests {
  func run(_ arguments: [String], environment: [String: String] = [:]) async throws -> (status: Int32, reason: Process.TerminationReason, error: String) {
    let child = try ChildProcess(Fixtures.standinAgent, arguments, environment: environment)
    for await _ in child.lines {}
    let status = await child.wait()
    return (status, child.process.terminationReason, child.standardError)
  }

  /// The agent's ready line: printed once the socket accepts.
  func ready(_ agent: ChildProcess) async throws {
    for await line in agent.lines where line.hasPrefix("Listening on") { return }
    throw TimedOut(what: "the agent's ready line")
  }

  @Test func unknownFlagIsAUsageErrorWithExitCode2() async throws {
    let result = try await run(["--bogus"])
    #expect(result.status == 2 && result.reason == .exit)
    #expect(result.error.contains("unexpected argument '--bogus'"))
  }

  /// The real agent has no `--version` (vaccel-contract.md): a check that relies on it fails on
  /// real nodes, so the stand-in refuses it the same way.
  @Test(arguments: ["--version", "-V"])
  func versionIsAUsageErrorAsWithTheRealAgent(_ flag: String) async throws {
    let result = try await run([flag])
    #expect(result.status == 2 && result.reason == .exit)
    #expect(result.error.hasPrefix("error: unexpected argument '\(flag)' found"), "\(result.error)")
  }

  @Test func anUnloadablePluginExits2BeforeAnySocketExists() async throws {
    let directory = try TestDirectory()
    let socket = directory.sub("a.sock")
    let result = try await run(["-a", "unix://" + socket], environment: ["VACCEL_PLUGINS": "libvaccel-nope.so"])
    #expect(result.status == 2)
    #expect(!FileManager.default.fileExists(atPath: socket))
  }

  @Test(arguments: ["ftp://x", "unix://relative", "tcp://host-without-port", "unix:///nonexistent/folder/a.sock"])
  func aBadAddressAborts(_ address: String) async throws {
    let result = try await run(["-a", address])
    #expect(result.reason == .uncaughtSignal && result.status == SIGABRT, "\(result)")
  }

  @Test func aStaleSocketIsAddressInUseAndTheSocketIsNeverRemoved() async throws {
    let directory = try TestDirectory()
    let socket = directory.sub("a.sock")
    let first = try ChildProcess(Fixtures.standinAgent, ["-a", "unix://" + socket], mergeStandardError: true)
    try await ready(first)
    _ = try await TTRPCClient.withConnection(to: .unix(path: socket), timeout: .seconds(5)) { connection in
      try await connection.call(
        service: VaccelAgentService.sync, method: "CreateSession", request: Vaccel_Session_CreateRequest(),
        as: Vaccel_Session_CreateResponse.self)
    }
    kill(first.process.processIdentifier, SIGTERM)
    #expect(await first.wait() == 0, "SIGTERM is a clean exit")
    #expect(FileManager.default.fileExists(atPath: socket), "the real agent leaves its socket behind")

    let second = try await run(["-a", "unix://" + socket])
    #expect(second.reason == .uncaughtSignal && second.status == SIGABRT)
  }

  @Test func refusedSessionsAreAnErrorStatus() async throws {
    let directory = try TestDirectory()
    let socket = directory.sub("a.sock")
    let agent = try ChildProcess(
      Fixtures.standinAgent, ["-a", "unix://" + socket], environment: ["STANDIN_REFUSE_SESSIONS": "1"], mergeStandardError: true)
    defer { kill(agent.process.processIdentifier, SIGKILL) }
    try await ready(agent)
    await #expect(throws: TTRPCError.self) {
      _ = try await TTRPCClient.withConnection(to: .unix(path: socket), timeout: .seconds(5)) { connection in
        try await connection.call(
          service: VaccelAgentService.sync, method: "CreateSession", request: Vaccel_Session_CreateRequest(),
          as: Vaccel_Session_CreateResponse.self)
      }
    }
  }
}
