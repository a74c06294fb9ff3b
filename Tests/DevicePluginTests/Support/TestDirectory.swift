import Foundation
import Logging

/// A fresh folder per test, short enough for unix socket paths (103 bytes), removed at the end.
final class TestDirectory: Sendable {
  let path: String

  init() throws {
    var template = Array("/tmp/vdp.XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else {
      throw CocoaError(.fileWriteUnknown)
    }
    path = String(cString: made)
  }

  func sub(_ name: String) -> String { path + "/" + name }

  deinit {
    try? FileManager.default.removeItem(atPath: path)
  }
}

extension Logger {
  /// Tests assert on behaviour, not on log lines; VDP_TEST_LOGS=1 shows them when debugging.
  static let test: Logger = {
    if ProcessInfo.processInfo.environment["VDP_TEST_LOGS"] == "1" {
      var logger = Logger(label: "test", factory: { StreamLogHandler.standardError(label: $0) })
      logger.logLevel = .debug
      return logger
    }
    return Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
  }()
}

