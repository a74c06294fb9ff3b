import Synchronization

/// A process's exit, once known, and everyone waiting for it: shared by our own children
/// (pidfd) and an agent host's (its `Wait` RPC).
public final class ExitLatch: Sendable {
  private let state = Mutex<(status: ExitStatus?, waiters: [UInt64: @Sendable (ExitStatus?) -> Void], next: UInt64)>((nil, [:], 0))

  public init() {}

  public var status: ExitStatus? { state.withLock { $0.status } }

  /// Records the exit and wakes every waiter; later calls change nothing.
  public func finish(_ status: ExitStatus) {
    let waiters = state.withLock { state -> [@Sendable (ExitStatus?) -> Void] in
      guard state.status == nil else { return [] }
      state.status = status
      defer { state.waiters = [:] }
      return Array(state.waiters.values)
    }
    for waiter in waiters { waiter(status) }
  }

  public func wait() async -> ExitStatus {
    // Only a cancellation or a deadline resume with nil, and this waiter has neither.
    await withCheckedContinuation { continuation in
      _ = register { continuation.resume(returning: $0 ?? .unknown) }
    }
  }

  /// The exit, or nil once `deadline` has passed or the calling task is cancelled.
  public func wait(within deadline: Duration? = nil) async -> ExitStatus? {
    let pending = Pending()
    let id = state.withLock { state -> UInt64 in
      state.next += 1
      return state.next
    }
    let timer = deadline.map { deadline in
      Task {
        try await Task.sleep(for: deadline)
        self.abandon(id, pending)
      }
    }
    defer { timer?.cancel() }
    return await withTaskCancellationHandler {
      await withCheckedContinuation { (continuation: CheckedContinuation<ExitStatus?, Never>) in
        pending.slot.withLock { $0 = continuation }
        _ = register(id: id) { pending.resume($0) }
        if Task.isCancelled { abandon(id, pending) }
      }
    } onCancel: {
      abandon(id, pending)
    }
  }

  private final class Pending: Sendable {
    let slot = Mutex<CheckedContinuation<ExitStatus?, Never>?>(nil)
    func resume(_ status: ExitStatus?) { slot.withLock { $0.take() }?.resume(returning: status) }
  }

  private func abandon(_ id: UInt64, _ pending: Pending) {
    _ = state.withLock { $0.waiters.removeValue(forKey: id) }
    pending.resume(nil)
  }

  /// Calls `body` once the process has exited (at once if it has).
  private func register(id: UInt64? = nil, _ body: @escaping @Sendable (ExitStatus?) -> Void) -> UInt64 {
    let (key, status) = state.withLock { state -> (UInt64, ExitStatus?) in
      let key = id ?? {
        state.next += 1
        return state.next
      }()
      if let status = state.status { return (key, status) }
      state.waiters[key] = body
      return (key, nil)
    }
    if let status { body(status) }
    return key
  }
}
