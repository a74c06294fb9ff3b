import Foundation
import StatusAPI
import Testing
@testable import VaccelCtlKit

/// The status table as people read it: within 120 columns by default, errors with their age.
@Suite("vaccelctl status table")
struct StatusFormatTests {
  static func status(error: String, errorAgeMs: Int64) -> Vaccel_Deviceplugin_Status_V1_GetStatusResponse {
    let now: Int64 = 1_796_000_000_000
    return .with {
      $0.nowUnixMs = now
      $0.daemon = .with { $0.version = "0.1.0"; $0.nodeName = "node-1"; $0.startedUnixMs = now - 60_000 }
      $0.resources = [.with {
        $0.name = "vaccel.org/accel"
        $0.registration = .registered
        $0.slots = [
          .with {
            $0.id = "accel-0"; $0.state = .allocated; $0.allocated = true; $0.healthy = true
            $0.holder = .with { $0.namespace = "inference-production"; $0.pod = "image-classifier-7f9c8d6b5-xk2lp"; $0.container = "classifier" }
            $0.agentPid = 41; $0.agentStartedUnixMs = now - 30_000
            $0.endpoint = "unix:///var/run/vaccel/accel/accel-0/0123456789abcdef/vaccel.sock"
            $0.lastError = error; $0.lastErrorUnixMs = now - errorAgeMs
          },
          .with { $0.id = "accel-1"; $0.index = 1; $0.state = .free; $0.healthy = true },
        ]
      }]
    }
  }

  @Test func theDefaultTableFits120ColumnsAndAgesTheError() {
    let long = "agent exited: signal 6 (SIGABRT): thread 'main' panicked at src/main.rs:88:10: failed to bind: Address in use"
    let table = StatusFormat.table(Self.status(error: long, errorAgeMs: 185_000), wide: false)
    for line in table.split(separator: "\n") {
      #expect(line.count <= StatusFormat.maxWidth, "\(line.count): \(line)")
    }
    #expect(table.contains("3m5s ago: agent exited"), "\(table)")
    #expect(table.contains("…"))
    #expect(!table.contains("ENDPOINT"))
    let wide = StatusFormat.table(Self.status(error: long, errorAgeMs: 185_000), wide: true)
    #expect(wide.contains("ENDPOINT") && wide.contains("0123456789abcdef/vaccel.sock") && wide.contains(long))
  }

  @Test func anEmptyErrorIsNone() {
    let table = StatusFormat.table(Self.status(error: "", errorAgeMs: 0), wide: false)
    #expect(table.split(separator: "\n").last?.hasSuffix("<none>") == true, "\(table)")
  }
}
