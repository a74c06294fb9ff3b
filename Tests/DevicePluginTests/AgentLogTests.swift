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
    FileManager.default.createFile(atPath: path, contents: nil)
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
}
