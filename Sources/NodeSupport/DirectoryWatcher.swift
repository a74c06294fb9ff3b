#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Tells when something may have changed in a folder. Consumers re-check what they care
/// about on each element, so events carry no detail and may be coalesced.
public protocol DirectoryWatching: Sendable {
  func changes(in directory: String) throws -> AsyncStream<Void>
}

/// inotify on the device-plugins folder: the kubelet deleting our socket or creating a new
/// `kubelet.sock` wakes the registration loop within milliseconds.
///
/// inotify has no async API in Swift's world, so one dedicated thread blocks in `poll(2)` on the
/// inotify descriptor and a wake-up pipe (never a cooperative-pool thread). If the folder
/// itself is deleted, the watch is re-armed every `rearmInterval` until the folder is back.
public struct InotifyWatcher: DirectoryWatching {
  public var rearmInterval: Duration
  /// Also report writes to files in the folder (log tailing), not only entries coming and going.
  public var includeModifications: Bool

  public init(rearmInterval: Duration = .seconds(1), includeModifications: Bool = false) {
    self.rearmInterval = rearmInterval
    self.includeModifications = includeModifications
  }

  public func changes(in directory: String) throws -> AsyncStream<Void> {
    let names = try changedNames(in: directory)
    let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    let forward = Task {
      for await _ in names { continuation.yield() }
      continuation.finish()
    }
    continuation.onTermination = { _ in forward.cancel() }
    return stream
  }

  /// The names of the entries that changed, batched per wake-up (so a busy folder costs work
  /// per changed file, not per file in it). Batches are merged while the reader is busy.
  public func changedNames(in directory: String) throws -> AsyncStream<Set<String>> {
    let fd = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
    guard fd >= 0 else { throw FileSystemError(operation: "inotify_init1", path: directory, errno: errno) }
    var pipeFDs: [Int32] = [-1, -1]
    guard pipe(&pipeFDs) == 0 else {
      let code = errno
      close(fd)
      throw FileSystemError(operation: "pipe2", path: directory, errno: code)
    }
    for pipeFD in pipeFDs {
      _ = fcntl(pipeFD, F_SETFD, FD_CLOEXEC)
      _ = fcntl(pipeFD, F_SETFL, O_NONBLOCK)
    }
    let (stream, continuation) = AsyncStream.makeStream(of: Set<String>.self, bufferingPolicy: .unbounded)
    let loop = WatchLoop(
      inotifyFD: fd, wakeFD: pipeFDs[0], directory: directory,
      rearmMilliseconds: Int32(clamping: rearmInterval.components.seconds * 1000
        + rearmInterval.components.attoseconds / 1_000_000_000_000_000),
      extraMask: includeModifications ? UInt32(IN_MODIFY) : 0,
      continuation: continuation)
    // Armed before this returns, not on the thread: a change made right after `changedNames`
    // returned was missed when the thread armed late (a test waited 20 s for a socket that had
    // long been created). A folder that does not exist yet is armed by the thread later.
    loop.arm()
    let wakeWriteFD = pipeFDs[1]
    continuation.onTermination = { _ in
      var byte: UInt8 = 1
      _ = write(wakeWriteFD, &byte, 1)
    }
    // inotify needs a thread of its own: its read blocks.
    OSThread.start {
      loop.run()
      close(wakeWriteFD)
    }
    return stream
  }
}

private final class WatchLoop: @unchecked Sendable {
  // Only touched on the watch thread once it runs (`arm()` before that, by its creator).
  private let inotifyFD: Int32
  private let wakeFD: Int32
  private let directory: String
  private let rearmMilliseconds: Int32
  private let continuation: AsyncStream<Set<String>>.Continuation
  private var watching = false
  private let mask: UInt32

  init(inotifyFD: Int32, wakeFD: Int32, directory: String, rearmMilliseconds: Int32, extraMask: UInt32,
       continuation: AsyncStream<Set<String>>.Continuation) {
    self.mask = UInt32(IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF) | extraMask
    self.inotifyFD = inotifyFD
    self.wakeFD = wakeFD
    self.directory = directory
    self.rearmMilliseconds = max(rearmMilliseconds, 10)
    self.continuation = continuation
  }

  func run() {
    defer {
      close(inotifyFD)
      close(wakeFD)
      continuation.finish()
    }
    if !watching { arm() }
    var fds = [pollfd(fd: inotifyFD, events: Int16(POLLIN), revents: 0), pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
    // One page: room for 15 events with the longest name (inotify(7): 16 bytes and at most
    // NAME_MAX + 1), and `drain` reads until none is left. Each watcher keeps it for life.
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
      let timeout = watching ? -1 : rearmMilliseconds
      let ready = poll(&fds, 2, timeout)
      if ready < 0 && errno == EINTR { continue }
      guard ready >= 0 else { return }
      if fds[1].revents != 0 { return }
      if fds[0].revents != 0 {
        continuation.yield(drain(&buffer))
      }
      if !watching && arm() {
        continuation.yield([])
      }
    }
  }

  @discardableResult
  func arm() -> Bool {
    watching = inotify_add_watch(inotifyFD, directory, mask) >= 0
    return watching
  }

  /// Reads every pending event; returns the names they concern.
  private func drain(_ buffer: inout [UInt8]) -> Set<String> {
    var names: Set<String> = []
    while true {
      let count = buffer.withUnsafeMutableBytes { read(inotifyFD, $0.baseAddress, $0.count) }
      guard count > 0 else { return names }
      var offset = 0
      let header = MemoryLayout<inotify_event>.size
      while offset + header <= count {
        let (mask, nameLength) = buffer.withUnsafeBytes { raw -> (UInt32, Int) in
          let event = raw.loadUnaligned(fromByteOffset: offset, as: inotify_event.self)
          return (event.mask, Int(event.len))
        }
        if mask & UInt32(IN_IGNORED) != 0 { watching = false }
        if nameLength > 0 {
          let start = offset + header
          let name = buffer[start..<min(start + nameLength, count)].prefix { $0 != 0 }
          names.insert(String(decoding: name, as: UTF8.self))
        }
        offset += header + nameLength
      }
    }
  }
}
