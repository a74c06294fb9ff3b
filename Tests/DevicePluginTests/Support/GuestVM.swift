import Foundation
import Glibc
import NodeSupport

/// A real guest VM as a VM sandbox's stand-in: QEMU under TCG with a vhost-user vsock device
/// served by Debian's vhost-device-vsock, which plays Firecracker's part of hybrid vsock (a
/// guest's connection to host port P goes to `<uds>_P`; a host connection to `<uds>` followed
/// by `CONNECT <port>` reaches the guest). The guest runs `vaccel-guest-client serve 1234`
/// (Tests/DevicePluginTests/Guest), which the test drives with one command per connection.
/// Built by scripts/build-guest-image from what scripts/install-guest-deps fetched.
final class GuestVM: @unchecked Sendable {
  static let commandPort = 1234
  let uds: String
  private let backend: ChildProcess
  private let qemu: ChildProcess
  let serialLog: String

  /// Where scripts/install-guest-deps put the kernel and vhost-device-vsock.
  static var dependencies: String {
    ProcessInfo.processInfo.environment["VACCEL_GUEST_DIR"] ?? Repository.root + "/.build-guest"
  }
  static var backendBinary: String { dependencies + "/vhost-device-vsock/usr/bin/vhost-device-vsock" }

  /// What is missing to boot a guest here, if anything.
  static var missing: [String] {
    var missing: [String] = []
    let kernels = (try? FileManager.default.contentsOfDirectory(atPath: dependencies + "/kernel/boot")) ?? []
    if !kernels.contains(where: { $0.hasPrefix("vmlinuz-") }) { missing.append("a guest kernel in \(dependencies)/kernel") }
    if !FileManager.default.isExecutableFile(atPath: backendBinary) { missing.append(backendBinary) }
    for tool in ["qemu-system-x86_64", "busybox", "cpio", "gcc"] where Repository.which(tool) == nil { missing.append(tool) }
    return missing
  }

  /// CI sets this: a machine without the guest's dependencies fails instead of skipping.
  static var required: Bool { ProcessInfo.processInfo.environment["VACCEL_REQUIRE_GUEST"] == "1" }

  /// Builds the image into `folder`, starts the vsock backend with the VM's hybrid-vsock
  /// socket at `uds`, boots the guest, and returns once its client serves.
  static func boot(uds: String, in folder: String, timeout: Duration = .seconds(90)) async throws -> GuestVM {
    let image = folder + "/image"
    let built = try await ChildProcess.run(Repository.root + "/scripts/build-guest-image", [image])
    guard built.status == 0 else { throw GuestError("build-guest-image failed: \(built.error)") }
    try FileManager.default.createDirectory(atPath: (uds as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    let control = folder + "/vhost-user.sock"
    let backend = try ChildProcess(backendBinary, ["--guest-cid", "3", "--socket", control, "--uds-path", uds])
    do {
      try await waitUntil("vhost-device-vsock's control socket", in: folder, timeout: .seconds(20)) {
        Self.isSocket(control) || !backend.process.isRunning
      }
    } catch {
      // It ignores the SIGTERM that ChildProcess sends on its way out: never leave it behind.
      kill(backend.process.processIdentifier, SIGKILL)
      throw error
    }
    guard backend.process.isRunning else { throw GuestError("vhost-device-vsock exited: \(backend.standardError)") }
    let serialLog = folder + "/serial.log"
    let qemu: ChildProcess
    do {
      qemu = try ChildProcess(
        "/usr/bin/env",
        [
          "qemu-system-x86_64", "-accel", "tcg", "-machine", "q35,memory-backend=mem",
          "-object", "memory-backend-memfd,id=mem,size=256M,share=on", "-m", "256M", "-smp", "1",
          "-nodefaults", "-nic", "none", "-display", "none", "-serial", "file:\(serialLog)", "-no-reboot",
          "-kernel", image + "/vmlinuz", "-initrd", image + "/initrd.gz", "-append", "console=ttyS0 panic=-1 quiet",
          "-chardev", "socket,id=vsk,path=\(control)", "-device", "vhost-user-vsock-pci,chardev=vsk",
        ])
    } catch {
      kill(backend.process.processIdentifier, SIGKILL)
      throw error
    }
    let vm = GuestVM(uds: uds, backend: backend, qemu: qemu, serialLog: serialLog)
    do {
      try await waitUntil("the guest's client to serve (serial log \(serialLog))", in: folder, timeout: timeout) {
        vm.serial.contains("serving on vsock port") || !qemu.process.isRunning
      }
      guard qemu.process.isRunning else { throw GuestError("QEMU exited: \(qemu.standardError)\n\(vm.serial)") }
    } catch {
      await vm.stop()
      throw error
    }
    return vm
  }

  private init(uds: String, backend: ChildProcess, qemu: ChildProcess, serialLog: String) {
    self.uds = uds
    self.backend = backend
    self.qemu = qemu
    self.serialLog = serialLog
  }

  var serial: String { (try? String(contentsOfFile: serialLog, encoding: .utf8)) ?? "" }

  /// Sends one command to the guest's client (host → guest over the VM's socket) and returns
  /// its one-line answer. On a thread of its own: the guest may take seconds to answer, and the
  /// daemon under test shares the cooperative pool.
  func command(_ line: String) async throws -> String {
    let uds = uds
    return try await withCheckedThrowingContinuation { continuation in
      Thread {
        continuation.resume(with: Result { try Self.exchange(uds: uds, line: line) })
      }.start()
    }
  }

  /// Powers the guest off, waits for QEMU, and stops the backend (it outlives QEMU).
  func powerOff() async -> Int32 {
    _ = try? await command("poweroff")
    let status = await qemu.wait(timeout: .seconds(30))
    await stop()
    return status
  }

  func stop() async {
    if qemu.process.isRunning { kill(qemu.process.processIdentifier, SIGKILL) }
    _ = await qemu.wait(timeout: .seconds(10))
    // It keeps running after SIGTERM (measured: still there 10 minutes later), and holds no
    // state worth a graceful end.
    if backend.process.isRunning { kill(backend.process.processIdentifier, SIGKILL) }
    _ = await backend.wait(timeout: .seconds(10))
  }

  private static func exchange(uds: String, line: String) throws -> String {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw GuestError("socket: \(errno)") }
    defer { close(fd) }
    var timeout = timeval(tv_sec: 30, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: uds.utf8.prefix($0.count - 1)) }
    let connected = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard connected == 0 else { throw GuestError("cannot connect to the VM's socket \(uds): errno \(errno)") }
    try send(fd, "CONNECT \(commandPort)\n")
    let accepted = try readLine(fd)
    guard accepted.hasPrefix("OK ") else { throw GuestError("the VM refused CONNECT \(commandPort): '\(accepted)'") }
    try send(fd, line + "\n")
    return try readLine(fd)
  }

  private static func send(_ fd: Int32, _ text: String) throws {
    let bytes = Array(text.utf8)
    guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count else { throw GuestError("write: errno \(errno)") }
  }

  private static func readLine(_ fd: Int32) throws -> String {
    var line: [UInt8] = []
    var byte: UInt8 = 0
    while read(fd, &byte, 1) == 1 {
      if byte == 0x0A { return String(decoding: line, as: UTF8.self) }
      line.append(byte)
    }
    throw GuestError("the guest closed the connection after '\(String(decoding: line, as: UTF8.self))' (errno \(errno))")
  }

  static func isSocket(_ path: String) -> Bool {
    var info = stat()
    return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFSOCK
  }
}

struct GuestError: Error, CustomStringConvertible {
  let description: String
  init(_ description: String) { self.description = description }
}

/// Waits for `condition`, checked now and after every change (creation or write) in `folder`.
func waitUntil(_ what: String, in folder: String, timeout: Duration, _ condition: @escaping @Sendable () -> Bool) async throws {
  let changes = try InotifyWatcher(includeModifications: true).changes(in: folder)
  if condition() { return }
  try await withThrowingTaskGroup(of: Void.self) { group in
    group.addTask {
      for await _ in changes where condition() { return }
      throw TimedOut(what: what)
    }
    group.addTask {
      try await Task.sleep(for: timeout)
      throw TimedOut(what: "\(what) within \(timeout)")
    }
    defer { group.cancelAll() }
    try await group.next()
  }
}
