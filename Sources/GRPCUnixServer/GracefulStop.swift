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
    _ = await serving.result
    canceller.cancel()
  }
}
