import Testing
import VaccelConfig

@testable import DevicePlugin

@Suite("SlotTable: IDs, health and preference order")
struct SlotTableTests {
  func table(_ policy: AllocationPolicy, slots: Int = 4) -> SlotTable {
    SlotTable(resource: ResourceConfig(slots: slots, policy: policy))
  }

  func ask(_ table: SlotTable, _ available: [String], must: [String] = [], size: Int = 1) throws -> [String] {
    try table.preferred(PreferenceRequest(available: available, mustInclude: must, size: size), resourceName: "r")
  }

  @Test func deviceIDsAreStableAndHealthy() {
    let devices = table(.spread).devices
    #expect(devices == (0..<4).map { DeviceStatus(id: "accel-\($0)", healthy: true) })
  }

  @Test func anIDNamesItsSlotAndNothingElseDoes() throws {
    let table = table(.spread, slots: 12)
    for index in 0..<12 { #expect(table.index(of: "accel-\(index)") == index) }
    for id in ["accel-08", "accel-+3", "accel-12", "accel--1", "accel-", "other-3", "accel3", "3", ""] {
      #expect(table.index(of: id) == nil, "\(id)")
      #expect(throws: PluginError.self) { try table.resolve([id], resourceName: "r") }
    }
    #expect(try table.resolve(["accel-11", "accel-0"], resourceName: "r") == [11, 0])
  }

  @Test func theAgentPoolsIDsAreTheTablesOwn() {
    let resource = ResourceConfig(slots: 3)
    let ids = (0..<3).map { resource.deviceID(slot: $0) }
    #expect(SlotTable(resource: resource, ids: ids).devices == SlotTable(resource: resource).devices)
  }

  @Test func packPrefersTheLowestSlot() throws {
    var table = table(.pack)
    table.recordAllocation([0])
    #expect(try ask(table, ["accel-3", "accel-0", "accel-2"], size: 2) == ["accel-0", "accel-2"])
  }

  @Test func spreadPrefersTheSlotIdleLongest() throws {
    var table = table(.spread)
    table.recordAllocation([0])
    table.recordAllocation([1])
    #expect(try ask(table, ["accel-0", "accel-1", "accel-2"]) == ["accel-2"])
    table.recordAllocation([2])
    #expect(try ask(table, ["accel-0", "accel-1", "accel-2"]) == ["accel-0"])
  }

  @Test func unhealthySlotsComeLast() throws {
    var table = table(.pack)
    _ = table.setHealth(slot: 0, healthy: false, reason: "agent down")
    #expect(try ask(table, ["accel-0", "accel-1"]) == ["accel-1"])
  }

  @Test func mustIncludeComesFirstAndCounts() throws {
    let table = table(.pack)
    #expect(try ask(table, ["accel-0", "accel-1", "accel-3"], must: ["accel-3"], size: 2) == ["accel-3", "accel-0"])
  }

  @Test(arguments: [
    (["accel-0"], [String](), 0),
    (["accel-0"], [String](), 2),
    (["accel-0", "bogus"], [String](), 1),
    (["accel-0", "accel-0"], [String](), 1),
    (["accel-0", "accel-1"], ["accel-2"], 1),
    (["accel-0", "accel-1"], ["accel-0", "accel-1"], 1),
  ])
  func nonsenseIsRejected(_ available: [String], _ must: [String], _ size: Int) {
    #expect(throws: PluginError.self) { try ask(table(.pack), available, must: must, size: size) }
  }

  @Test func healthChangeIsReportedOnlyWhenItChanges() {
    var table = table(.pack)
    let unchanged = table.setHealth(slot: 1, healthy: true, reason: nil)
    let down = table.setHealth(slot: 1, healthy: false, reason: "x")
    #expect(!unchanged && down)
    #expect(table.slots[1].unhealthyReason == "x")
    let up = table.setHealth(slot: 1, healthy: true, reason: nil)
    #expect(up && table.slots[1].unhealthyReason == nil)
  }

  @Test func keptCountsAlwaysEqualARecount() {
    var table = table(.spread, slots: 16)
    var generator = SystemRandomNumberGenerator()
    for _ in 0..<2000 {
      let index = Int.random(in: 0..<16, using: &generator)
      switch Int.random(in: 0..<5, using: &generator) {
      case 0: _ = table.setHealth(slot: index, healthy: Bool.random(using: &generator), reason: "r")
      case 1: table.recordAllocation([index])
      case 2: _ = table.recordHolder(Holder(namespace: "n", pod: "p", container: "c"), slot: index)
      case 3: table.free(slot: index)
      default: table.setAgentReady(slot: index, Bool.random(using: &generator))
      }
      #expect(table.healthyCount == table.slots.filter(\.healthy).count)
      #expect(table.allocatedCount == table.slots.filter(\.allocated).count)
      #expect(table.agentReadyCount == table.slots.filter(\.agentReady).count)
    }
  }
}
