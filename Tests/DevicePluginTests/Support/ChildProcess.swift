import Foundation

/// A child process for interop tests: stdout as lines, stderr kept, exit status awaited.
final class ChildProcess: @unchecked Sendable {
  let process = Process()
  let lines: AsyncStream<String>
  private let stderrPipe = Pipe()
  private let errorOutput = LockedData()
  private let exit: Task<Int32, Never>
  private let stderrEnd: AsyncStream<Void>
  private let exitWaiters = ExitWaiters()

  /// `mergeStandardError`: stderr lines arrive in `lines` too (an agent's ready line is there).
  init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil, mergeStandardError: Bool = false) throws {
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment {
      process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    }
    let stdoutPipe = Pipe()
    process.standardOutput = stdoutPipe
    process.standardError = mergeStandardError ? stdoutPipe : stderrPipe
    process.standardInput = FileHandle.nullDevice

    let (lines, continuation) = AsyncStream.makeStream(of: String.self)
    self.lines = lines
    // Blocking reads on threads of their own: simple, and EOF always arrives.
    let stdoutHandle = stdoutPipe.fileHandleForReading
    Thread {
      let buffer = LineBuffer()
      while case let data = stdoutHandle.availableData, !data.isEmpty {
        for line in buffer.append(data) { continuation.yield(line) }
      }
      if let rest = buffer.finish() { continuation.yield(rest) }
      continuation.finish()
    }.start()
    let stderrHandle = stderrPipe.fileHandleForReading
    let collected = errorOutput
    if mergeStandardError { try? stderrPipe.fileHandleForWriting.close() }
    let (eof, eofContinuation) = AsyncStream.makeStream(of: Void.self)
    Thread {
      while case let data = stderrHandle.availableData, !data.isEmpty { collected.append(data) }
      eofContinuation.finish()
    }.start()
    stderrEnd = eof
    let (exited, exitContinuation) = AsyncStream.makeStream(of: Int32.self)
    let waiters = exitWaiters
    process.terminationHandler = {
      exitContinuation.yield($0.terminationStatus)
      exitContinuation.finish()
      waiters.exited($0.terminationStatus)
    }
    exit = Task { await exited.first { _ in true } ?? -1 }
    try process.run()
  }

  /// A test that fails half-way must not leave its daemon (and so its agents) running:
  /// SIGTERM lets a daemon stop its agents on its way out.
  deinit {
    if process.isRunning { kill(process.processIdentifier, SIGTERM) }
  }

  /// Waits for the exit, then for stderr's end (the exit can be reported before the reader
  /// has drained the pipe: a usage error once read as empty). Kills the child after `timeout`
  /// (a safety net for a hung child); a grandchild still holding stderr open gets 10 s.
  func wait(timeout: Duration = .seconds(180)) async -> Int32 {
    let guardTask = Task { [process] in
      try await Task.sleep(for: timeout)
      process.terminate()
    }
    defer { guardTask.cancel() }
    let status = await exit.value
    await withTaskGroup(of: Void.self) { group in
      group.addTask { for await _ in self.stderrEnd {} }  // ends at EOF, or when cancelled
      group.addTask { try? await Task.sleep(for: .seconds(10)) }
      await group.next()
      group.cancelAll()
    }
    return status
  }

  /// Its exit status, once it has exited (stderr may still be draining: `wait()` waits for
  /// both). Unlike `wait()`, a cancelled caller stops waiting (CancellationError).
  func exited() async throws -> Int32 {
    let id = UUID()
    return try await withTaskCancellationHandler {
      try await withCheckedThrowingContinuation { continuation in
        exitWaiters.add(id, continuation)
      }
    } onCancel: {
      exitWaiters.cancel(id)
    }
  }

  /// What the child wrote to stderr so far (all of it once `wait()` returned).
  var standardError: String { String(decoding: errorOutput.value, as: UTF8.self) }

  /// Runs to completion and returns (status, stdout, stderr).
  static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil)
    async throws -> (status: Int32, output: String, error: String)
  {
    let child = try ChildProcess(executable, arguments, environment: environment)
    var output: [String] = []
    for await line in child.lines { output.append(line) }
    let status = await child.wait()
    return (status, output.joined(separator: "\n"), child.standardError)
  }
}

/// Callers of `exited()`: resumed with the status, or with CancellationError when cancelled.
private final class ExitWaiters: @unchecked Sendable {
  private let lock = NSLock()
  private var status: Int32?
  private var waiting: [UUID: CheckedContinuation<Int32, any Error>] = [:]
  private var cancelled: Set<UUID> = []

  func add(_ id: UUID, _ continuation: CheckedContinuation<Int32, any Error>) {
    lock.lock()
    if let status {
      lock.unlock()
      continuation.resume(returning: status)
    } else if cancelled.remove(id) != nil {
      lock.unlock()
      continuation.resume(throwing: CancellationError())
    } else {
      waiting[id] = continuation
      lock.unlock()
    }
  }

  func cancel(_ id: UUID) {
    lock.lock()
    let continuation = waiting.removeValue(forKey: id)
    if continuation == nil, status == nil { cancelled.insert(id) }  // cancelled before add
    lock.unlock()
    continuation?.resume(throwing: CancellationError())
  }

  func exited(_ code: Int32) {
    lock.lock()
    status = code
    let all = waiting.values
    waiting.removeAll()
    lock.unlock()
    for continuation in all { continuation.resume(returning: code) }
  }
}

private final class LockedData: @unchecked Sendable {
  private var data = Data()
  private let lock = NSLock()

  func append(_ more: Data) {
    lock.lock()
    data.append(more)
    lock.unlock()
  }

  var value: Data {
    lock.lock()
    defer { lock.unlock() }
    return data
  }
}

private final class LineBuffer: @unchecked Sendable {
  private var pending = Data()
  private let lock = NSLock()

  func append(_ data: Data) -> [String] {
    lock.lock()
    defer { lock.unlock() }
    pending.append(data)
    var lines: [String] = []
    while let newline = pending.firstIndex(of: 0x0A) {
      lines.append(String(decoding: pending[pending.startIndex..<newline], as: UTF8.self))
      pending.removeSubrange(pending.startIndex...newline)
    }
    return lines
  }

  func finish() -> String? {
    lock.lock()
    defer { lock.unlock() }
    return pending.isEmpty ? nil : String(decoding: pending, as: UTF8.self)
  }
}

/// Paths of the repository, found from this file's location.
enum Repository {
  static let root: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<4 { url.deleteLastPathComponent() }
    return url.path
  }()
  static var protos: String { root + "/Protos" }
  static var interop: String { root + "/Tests/DevicePluginTests/Interop" }

  /// Finds an executable on PATH.
  static func which(_ name: String) -> String? {
    for folder in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
      let path = "\(folder)/\(name)"
      if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return nil
  }
}
