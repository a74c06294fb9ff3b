import Logging
import Testing
import VaccelConfig

@testable import VaccelAgents

/// What a slot's supervisor works out from its id instead of keeping: the slot's folder, and
/// which slot a changed log file belongs to.
@Suite("Slot places: folders and log files from a slot's id")
struct SlotPlacesTests {
  @Test func aUnixSlotsFolderIsTheLayoutsAndTheOtherTransportsHaveNone() {
    let runDir = "/var/run/vaccel"
    for transport in [AgentTransport.unix, .hybridVsock, .vsock, .tcp] {
      let resource = ResourceConfig(name: "vaccel.org/accel", slots: 4, transport: transport)
      for index in 0..<4 {
        let addressing = SlotAddressing(resource: resource, runDir: runDir, slot: index)
        let expected = transport == .unix ? EndpointLayout.slotFolder(runDir: runDir, resource: resource, slot: index) : nil
        #expect(addressing.slotFolder == expected, "\(transport) slot \(index)")
      }
    }
    let unix = SlotAddressing(resource: ResourceConfig(slots: 4), runDir: runDir + "/", slot: 2)
    #expect(unix.endpoint(allocation: "0123456789abcdef").socketPath == runDir + "/accel/accel-2/0123456789abcdef/vaccel.sock")
  }

  @Test func aLogFileNamesItsSlotAndNothingElseDoes() throws {
    let monitor = try ProcessMonitor(reapOrphans: false, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
    defer { monitor.shutdown() }  // its watcher thread
    let pool = AgentPool(
      resource: ResourceConfig(name: "vaccel.org/accel", slots: 12), runDir: "/nonexistent/run",
      stateDir: "/nonexistent/state", launcher: PosixLauncher(monitor: monitor), searchPath: nil,
      logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
    for index in 0..<12 {
      #expect(pool.slot(ofLog: "\(pool.slots[index].context.slotID).log") == index)
    }
    let slot = pool.slots[3].context.slotID
    for name in [
      "\(slot).log.1", slot, "\(slot)x.log", "other-3.log", "accel-12.log", "accel--1.log", "accel-+3.log",
      "accel-.log", "-.log", ".log", "log", "",
    ] {
      #expect(pool.slot(ofLog: name) == nil, "\(name)")
    }
  }
}
