import Synchronization
public import GRPCCore

extension GRPCServer {
  /// Stops a server whose `serve()` runs in `serving`: graceful shutdown first, and only after
  /// `deadline` a cancel of whatever is left. Never a bare cancel: cancelling `serve()` while
  /// an accepted connection is still buffered traps in swift-nio (apple/swift-nio#3481); a
  /// graceful shutdown drains it first.
  public func stop(serving: Task<Void, any Error>, deadline: Duration) async {
    beginGracefulShutdown()
    let canceller = Task {
      try await Task.sleep(for: deadline)
      serving.cancel()
    }
    // A serve task that outlives its cancellation must not hold the caller (and the daemon's
    // exit) forever: a second past the deadline, the caller goes on without it. (A daemon whose
    // metrics port was busy once hung here at start-up, under heavy load, instead of exiting 1.)
    let done = Mutex<CheckedContinuation<Void, Never>?>(nil)
    let finish: @Sendable () -> Void = { done.withLock { $0.take() }?.resume() }
    let giveUp = Task {
      try? await Task.sleep(for: deadline + .seconds(1))
      finish()
    }
    await withCheckedContinuation { continuation in
      done.withLock { $0 = continuation }
      Task {
        _ = await serving.result
        finish()
      }
    }
    giveUp.cancel()
    canceller.cancel()
  }
}
