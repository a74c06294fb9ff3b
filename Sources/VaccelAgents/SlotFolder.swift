import Glibc
import NodeSupport
import VaccelConfig

/// The files of one slot's agent (unix transport): the allocation's folder, made without ever
/// following a symlink, its socket, and their removal. See `EndpointLayout`.
enum SlotFolder {
  /// Makes `<root>/<slug>/<slot>/<allocation>/`: the resource's and the slot's folders are
  /// traversable, not listable (a pod sees only its own allocation); the allocation's folder
  /// gets the configured owner and mode.
  static func prepare(_ endpoint: AgentEndpoint, addressing: SlotAddressing, access: EndpointAccess) throws(FileSystemError) {
    guard let folder = endpoint.folder, let root = addressing.root, let slotFolder = addressing.slotFolder else { return }
    try Directories.create(root)
    try Directories.create(String(folder.dropFirst(root.count)), beneath: root)
    let resourceFolder = String(slotFolder[..<(slotFolder.lastIndex(of: "/") ?? slotFolder.endIndex)])
    try FileAccess.set(resourceFolder, type: S_IFDIR, uid: nil, gid: nil, mode: 0o711)
    if folder != slotFolder {
      try FileAccess.set(slotFolder, type: S_IFDIR, uid: nil, gid: nil, mode: 0o711)
    }
    try FileAccess.set(folder, type: S_IFDIR, uid: access.uid, gid: access.gid, mode: access.folderMode)
  }

  /// The real agent never removes its socket, and refuses to start on an existing one.
  static func removeSocket(_ endpoint: AgentEndpoint) {
    guard let socketPath = endpoint.socketPath else { return }
    var info = stat()
    if lstat(socketPath, &info) == 0 && info.st_mode & S_IFMT == S_IFSOCK {
      unlink(socketPath)
    }
  }

  /// Removes the allocation's folder with whatever its holder left there. In the old layout
  /// (the slot folder itself) only its contents go.
  static func remove(_ endpoint: AgentEndpoint) {
    guard let folder = endpoint.folder else { return }
    if endpoint.allocation.isEmpty {
      Directories.removeContents(of: folder)
    } else {
      Directories.removeTree(folder)
    }
  }

  /// Removes every allocation folder of the slot but `keeping` (what a previous daemon left
  /// for holders that are gone). With nothing kept, the slot folder is emptied.
  static func removeAllocations(of addressing: SlotAddressing, keeping: String?) {
    guard let slotFolder = addressing.slotFolder else { return }
    guard let keeping else {
      Directories.removeContents(of: slotFolder)
      return
    }
    for name in Directories.subfolders(of: slotFolder) where name != keeping && EndpointLayout.isAllocation(name) {
      Directories.removeTree(slotFolder.joiningPath(name))
    }
    if !keeping.isEmpty {
      // The old layout's socket, directly in the slot folder.
      SlotFolder.removeSocket(addressing.endpoint(allocation: ""))
    }
  }

  /// The newest allocation folder on disk, for a held slot whose checkpoint is lost.
  static func newestAllocation(of addressing: SlotAddressing) -> String? {
    guard let slotFolder = addressing.slotFolder else { return nil }
    return Directories.subfolders(of: slotFolder).first(where: EndpointLayout.isAllocation)
  }
}
