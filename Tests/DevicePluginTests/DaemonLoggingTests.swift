import DaemonLogging
import Foundation
import Logging
import Synchronization
import Testing

@Suite("Daemon logs: key=value or JSON, level changeable at run time")
struct DaemonLoggingTests {
  final class Lines: Sendable {
    let lines = Mutex<[String]>([])
    var all: [String] { lines.withLock { $0 } }
  }

  func logger(_ format: LogFormat, _ control: LogLevelControl, _ lines: Lines) -> Logger {
    Logger(label: "test") { label in
      DaemonLogHandler(label: label, format: format, control: control) { line in lines.lines.withLock { $0.append(line) } }
    }
  }

  @Test func keyValueQuotesOnlyWhatNeedsIt() throws {
    let lines = Lines()
    let log = logger(.keyvalue, LogLevelControl(.info), lines)
    log.info("allocated", metadata: ["slot": "accel-3", "holder": "default/a b", "odd": "x=\"y\"\n"])
    let line = try #require(lines.all.first)
    #expect(line.hasPrefix("ts="))
    #expect(line.contains(" level=info msg=allocated "))
    #expect(line.contains(#"holder="default/a b""#))
    #expect(line.contains(#"odd="x=\"y\"\n""#))
    #expect(line.contains(" slot=accel-3 "))
    #expect(!line.contains("\n"))
  }

  @Test func jsonLinesParseBack() throws {
    let lines = Lines()
    let log = logger(.json, LogLevelControl(.info), lines)
    log.warning("agent exited", metadata: ["slot": "accel-1", "error": "killed by \"SIGKILL\"\n\u{1}"])
    let object = try JSONSerialization.jsonObject(with: Data(try #require(lines.all.first).utf8)) as? [String: String]
    #expect(object?["level"] == "warning" && object?["msg"] == "agent exited")
    #expect(object?["error"] == "killed by \"SIGKILL\"\n\u{1}")
    #expect(object?["ts"]?.hasSuffix("Z") == true)
  }

  /// A logger's own fields (each slot's logger has its resource and slot) come out on every
  /// line, can be replaced and removed, and the handler stays small enough for `Logger` to
  /// hold inline (three words): a bigger one costs an allocation per logger with metadata.
  @Test func ownFieldsAreKeptSetReplacedAndRemoved() throws {
    #expect(MemoryLayout<DaemonLogHandler>.size <= 3 * MemoryLayout<Int>.size)
    let lines = Lines()
    var log = logger(.keyvalue, LogLevelControl(.info), lines)
    log[metadataKey: "resource"] = "vaccel.org/accel"
    log[metadataKey: "slot"] = "accel-0"
    log[metadataKey: "slot"] = "accel-1"
    log.info("one")
    log[metadataKey: "resource"] = nil
    log.info("two", metadata: ["slot": "accel-2"])
    #expect(log[metadataKey: "slot"] == "accel-1")
    #expect(log.handler.metadata == ["slot": "accel-1"])
    #expect(lines.all.count == 2)
    let first = try #require(lines.all.first), second = try #require(lines.all.last)
    #expect(first.contains(" resource=vaccel.org/accel ") && first.contains(" slot=accel-1 ") && !first.contains("accel-0"))
    #expect(!second.contains("resource=") && second.contains(" slot=accel-2 "), "the event's own field wins")
  }

  @Test func oneControlChangesEveryLoggerAtOnce() {
    let lines = Lines()
    let control = LogLevelControl(.error)
    let first = logger(.keyvalue, control, lines)
    let second = logger(.keyvalue, control, lines)
    first.info("hidden")
    control.current = .debug
    first.debug("shown")
    second.debug("shown too")
    #expect(lines.all.count == 2)
  }
}

@Suite("SIGHUP reloads the log level")
struct LogReloadTests {
  @Test func sighupAppliesTheNewLevelWithoutARestart() async throws {
    let directory = try TestDirectory()
    let config = directory.sub("c.yaml")
    func write(_ level: String) throws {
      try """
        version: v1
        logLevel: \(level)
        kubelet: {devicePluginDir: \(directory.sub("dp")), podResourcesSocket: \(directory.sub("pr.sock"))}
        runDir: \(directory.sub("run"))
        stateDir: \(directory.sub("state"))
        metrics: {address: ""}
        agent: {binary: \(Fixtures.standinAgent)}
        """.write(toFile: config, atomically: true, encoding: .utf8)
    }
    try write("info")
    let binary = URL(fileURLWithPath: Fixtures.standinAgent).deletingLastPathComponent().path + "/vaccel-device-plugin"
    let daemon = try ChildProcess(binary, ["--config", config], mergeStandardError: true)
    var lines = daemon.lines.makeAsyncIterator()
    while let line = await lines.next(), !line.contains("msg=\"waiting for the kubelet\"") {}

    try write("debug")
    kill(daemon.process.processIdentifier, SIGHUP)
    var reloaded = false
    while let line = await lines.next() {
      if line.contains("msg=\"configuration reloaded\"") && line.contains("logLevel=debug") {
        reloaded = true
        break
      }
    }
    #expect(reloaded)
    kill(daemon.process.processIdentifier, SIGTERM)
    #expect(await daemon.wait() == 0)
  }
}
