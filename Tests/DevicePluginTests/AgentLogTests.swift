import Foundation
import Testing

@testable import VaccelAgents

@Suite("AgentLog: tailing and capping an agent's log file")
struct AgentLogTests {
  @Test func returnsNewCompleteLinesOnly() throws {
    let directory = try TestDirectory()
    let path = directory.sub("a.log")
    let log = AgentLog(path: path, maxBytes: 1 << 20)
    #expect(log.readNewLines().isEmpty, "no file yet")
    #expect(FileManager.default.createFile(atPath: path, contents: nil))
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    try handle.write(contentsOf: Data("one\ntwo\npart".utf8))
    #expect(log.readNewLines() == ["one", "two"])
    try handle.write(contentsOf: Data("ial\n".utf8))
    #expect(log.readNewLines() == ["partial"])
    try handle.close()
  }

  @Test func keepsTheFileNearItsCapWhileTheWriterKeepsWriting() throws {
    let directory = try TestDirectory()
    let path = directory.sub("a.log")
    _ = FileManager.default.createFile(atPath: path, contents: nil)
    let log = AgentLog(path: path, maxBytes: 4096)
    // The agent's own descriptor, opened O_APPEND as the launcher does.
    let fd = open(path, O_WRONLY | O_APPEND)
    defer { close(fd) }
    let line = Array(String(repeating: "x", count: 99).utf8) + [0x0A]
    var seen = 0
    for _ in 0..<200 {
      _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
      seen += log.readNewLines().count
    }
    let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? -1
    #expect(size <= 4096 + 100, "size \(size)")
    #expect(FileManager.default.fileExists(atPath: path + ".1"))
    #expect(seen == 200, "every line forwarded once")
  }

  @Test(arguments: [
    ("[2026-11-29T10:00:00Z INFO  vaccel_rpc_agent] Listening on 'unix:///x'", AgentLogLine.Severity.info),
    ("[2026-11-29T10:00:00Z WARN  vaccel_rpc_agent::server] slow call", .warning),
    ("2026.11.29-10:00:00.00 - <error> Could not load plugin", .error),
    ("[ERROR] Could not create root rundir", .error),
    ("[INFO] session:1 created", .info),
    ("2026-11-29T10:00:00.000Z DEBUG ttrpc::sync::server: accepted", .debug),
    ("thread 'main' panicked at src/main.rs:10:5", .error),  // a known failure, no level word
    ("    at some continuation line", .info),
  ])
  func agentLineSeverities(_ line: String, _ expected: AgentLogLine.Severity) {
    #expect(AgentLogLine.severity(of: line) == expected)
  }

  @Test func forwardingFollowsTheSetting() {
    #expect(!AgentLogLine.forwards(.info, under: .warning))
    #expect(AgentLogLine.forwards(.warning, under: .warning) && AgentLogLine.forwards(.error, under: .warning))
    #expect(AgentLogLine.forwards(.info, under: .info) && !AgentLogLine.forwards(.debug, under: .info))
    #expect(AgentLogLine.forwards(.debug, under: .debug))
    #expect(!AgentLogLine.forwards(.error, under: .off))
  }
}
