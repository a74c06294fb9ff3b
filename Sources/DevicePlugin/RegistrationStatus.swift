#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// One resource's registration with the kubelet, as the status API reports it. Written by the
/// resource's `RegistrationLoop` only, read by the status service: a mutex, not an actor, so
/// that reading it never waits behind a registration in progress.
public final class RegistrationStatus: Sendable {
  public enum State: Sendable, Equatable {
    case starting
    case waitingForKubelet
    case registered
    case retrying
    case stopped
  }

  public struct Snapshot: Sendable, Equatable {
    public var state: State = .starting
    public var since = Date()
    public var lastError: String?
    public var registrations = 0
  }

  private struct Waiter {
    let predicate: @Sendable (Snapshot) -> Bool
    let continuation: CheckedContinuation<Snapshot, Never>
  }

  private struct Guarded {
    var snapshot = Snapshot()
    var waiters: [UUID: Waiter] = [:]
    var watchers: [UUID: AsyncStream<Void>.Continuation] = [:]
  }

  /// A tick after every change, until cancelled (status watchers).
  public func changes() -> AsyncStream<Void> {
    let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    let id = UUID()
    current.withLock { $0.watchers[id] = continuation }
    continuation.onTermination = { [weak self] _ in _ = self?.current.withLock { $0.watchers.removeValue(forKey: id) } }
    return stream
  }

  private let current = Mutex(Guarded())

  public init() {}

  public var snapshot: Snapshot { current.withLock { $0.snapshot } }

  /// Moves to `state` (its `since` changes only when the state does); `error` is kept until
  /// the next success.
  func set(_ state: State, error: String? = nil, now: Date = Date()) {
    let ready: [(CheckedContinuation<Snapshot, Never>, Snapshot)] = current.withLock { guarded in
      if guarded.snapshot.state != state {
        guarded.snapshot.state = state
        guarded.snapshot.since = now
      }
      if let error { guarded.snapshot.lastError = error }
      if state == .registered {
        guarded.snapshot.lastError = nil
        guarded.snapshot.registrations += 1
      }
      let snapshot = guarded.snapshot
      for watcher in guarded.watchers.values { watcher.yield() }
      let due = guarded.waiters.filter { $0.value.predicate(snapshot) }
      for key in due.keys { guarded.waiters.removeValue(forKey: key) }
      return due.values.map { ($0.continuation, snapshot) }
    }
    for (continuation, snapshot) in ready { continuation.resume(returning: snapshot) }
  }

  /// The first snapshot that satisfies `predicate`, now or after a later change; nil after `timeout`.
  public func wait(timeout: Duration, until predicate: @escaping @Sendable (Snapshot) -> Bool) async -> Snapshot? {
    let id = UUID()
    let timer = Task {
      try await Task.sleep(for: timeout)
      let waiter = current.withLock { $0.waiters.removeValue(forKey: id) }
      waiter?.continuation.resume(returning: Snapshot(state: .stopped, since: .distantPast))
    }
    defer { timer.cancel() }
    let result = await withCheckedContinuation { (continuation: CheckedContinuation<Snapshot, Never>) in
      let now: Snapshot? = current.withLock { guarded in
        if predicate(guarded.snapshot) { return guarded.snapshot }
        guarded.waiters[id] = Waiter(predicate: predicate, continuation: continuation)
        return nil
      }
      if let now { continuation.resume(returning: now) }
    }
    return result.since == .distantPast ? nil : result
  }
}
