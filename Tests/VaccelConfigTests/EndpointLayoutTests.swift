import Testing
import VaccelConfig

/// Where unix agents live: one folder per allocation, and the old one-folder-per-slot layout
/// still recognised after an upgrade.
@Suite("EndpointLayout")
struct EndpointLayoutTests {
  static let slot = "/var/run/vaccel/accel/accel-3"

  @Test func allocationNamesAreSixteenHexDigitsAndNeverRepeat() {
    let names = (0..<1000).map { _ in EndpointLayout.newAllocation() }
    #expect(names.allSatisfy(EndpointLayout.isAllocation))
    #expect(Set(names).count == names.count)
  }

  @Test(arguments: [
    (slot + "/0123456789abcdef/vaccel.sock", "0123456789abcdef"),
    (slot + "/vaccel.sock", ""),  // a daemon before 0.2: the slot folder itself
    (slot + "/0123456789ABCDEF/vaccel.sock", nil),  // not a name we make
    (slot + "/../accel-4/0123456789abcdef/vaccel.sock", nil),
    (slot + "/0123456789abcdef/other.sock", nil),
    (slot + "/0123456789abcdef/x/vaccel.sock", nil),
    ("/var/run/vaccel/accel/accel-30/0123456789abcdef/vaccel.sock", nil),  // another slot
  ] as [(String, String?)])
  func socketPathsParseBackToTheirAllocation(_ path: String, _ expected: String?) {
    #expect(EndpointLayout.allocation(ofSocket: path, slotFolder: Self.slot) == expected)
  }

  @Test func foldersNestUnderTheSlot() {
    let resource = ResourceConfig(name: "vaccel.org/accel")
    #expect(EndpointLayout.slotFolder(runDir: "/var/run/vaccel", resource: resource, slot: 3) == Self.slot)
    #expect(EndpointLayout.allocationFolder(slotFolder: Self.slot, allocation: "0123456789abcdef") == Self.slot + "/0123456789abcdef")
    #expect(EndpointLayout.allocationFolder(slotFolder: Self.slot, allocation: "") == Self.slot)
  }
}
