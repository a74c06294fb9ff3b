/// Where unix-transport agents live on the host. Every allocation gets a folder of its own,
///
///     <runDir>/<slug>/<slot-id>/<allocation>/vaccel.sock
///
/// and the Allocate reply mounts only that folder. A pod that is being deleted keeps its mount
/// for a while after the kubelet has handed its device to the next pod; since the next holder's
/// agent binds in a new folder, the old mount can never reach it, and the old folder goes once
/// its agent has stopped. A container restart in the same pod gets the same folder back (the
/// kubelet replays its checkpointed reply).
///
/// `<allocation>` is 16 random hex digits: not a counter, so that a lost checkpoint can never
/// make the daemon reuse the name of a folder a dying pod still has mounted. The empty
/// allocation is the slot folder itself, the layout of daemons before 0.2, kept so that a pod
/// admitted by one of them keeps its agent after an upgrade.
public enum EndpointLayout {
  public static let socketName = "vaccel.sock"
  public static let allocationLength = 16

  /// The folder of one slot: holds that slot's allocation folders; traversable, not listable.
  public static func slotFolder(runDir: String, resource: ResourceConfig, slot index: Int) -> String {
    runDir.joiningPath(resource.slug).joiningPath(resource.deviceID(slot: index))
  }

  /// The folder of one allocation of a slot (mounted into the holder's containers).
  public static func allocationFolder(slotFolder: String, allocation: String) -> String {
    allocation.isEmpty ? slotFolder : slotFolder.joiningPath(allocation)
  }

  /// A new allocation name: 64 bits from the system's random source.
  public static func newAllocation() -> String {
    var generator = SystemRandomNumberGenerator()
    let digits = String(generator.next() as UInt64, radix: 16)
    return String(repeating: "0", count: allocationLength - digits.count) + digits
  }

  /// Whether `name` is an allocation folder's name (never `..`, a link target or a stray file).
  public static func isAllocation(_ name: String) -> Bool {
    name.utf8.count == allocationLength && name.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
  }

  /// The allocation an agent socket path belongs to, if it is one of `slotFolder`'s:
  /// `<slotFolder>/<allocation>/vaccel.sock`, or `<slotFolder>/vaccel.sock` (the old layout: "").
  public static func allocation(ofSocket path: String, slotFolder: String) -> String? {
    let prefix = slotFolder.joiningPath("")
    guard path.hasPrefix(prefix) else { return nil }
    let rest = path.dropFirst(prefix.count)
    if rest == socketName { return "" }
    let parts = rest.split(separator: "/", omittingEmptySubsequences: false)
    guard parts.count == 2, parts[1] == socketName, isAllocation(String(parts[0])) else { return nil }
    return String(parts[0])
  }
}
