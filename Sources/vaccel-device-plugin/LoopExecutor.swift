// Swift 6.3's custom-executor API, still behind SPI names. The toolchain is pinned, and the
// tests that run the daemon's executable run it on this executor.
@_spi(ExperimentalCustomExecutors) @_spi(ExperimentalScheduling) import _Concurrency
import NIOCore
import NIOPosix

/// Swift concurrency's default executor in the daemon: its one event loop.
///
/// Left to itself, the runtime runs tasks on libdispatch: a worker thread per core at least,
/// more while one blocks, and a manager thread for the timers behind `Task.sleep`. Each keeps a
/// stack and a malloc cache for the daemon's whole life, to run work of a few microseconds per
/// request. The loop already wakes for every byte the daemon moves, so it runs the tasks and
/// their sleeps too: no thread hop between a socket and the code that answers it.
///
/// What blocks runs elsewhere: a checkpoint's fsyncs on `CheckpointWriter.disk`, the waits on
/// the kernel (signals, pidfds, inotify) on threads of their own.
struct LoopExecutorFactory: ExecutorFactory {
  static var mainExecutor: any MainExecutor { PlatformExecutorFactory.mainExecutor }
  static var defaultExecutor: any TaskExecutor { LoopExecutor.shared }

  /// Call it first in `main`, before any task exists, and after
  /// `NIOSingletons.groupLoopCountSuggestion` is set.
  static func install() {
    _createExecutors(factory: LoopExecutorFactory.self)
  }
}

final class LoopExecutor: TaskExecutor, SchedulingExecutor {
  static let shared = LoopExecutor(loop: MultiThreadedEventLoopGroup.singleton.next())

  /// Beyond this, a sleep ends after this long (about 100 years), which a loop's deadline holds.
  static let longestDelay: Int64 = 100 * 366 * 24 * 3600

  let loop: any EventLoop

  init(loop: any EventLoop) {
    self.loop = loop
  }

  func enqueue(_ job: consuming ExecutorJob) {
    let job = UnownedJob(job)
    loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
  }

  func enqueue<C: Clock>(_ job: consuming ExecutorJob, after delay: C.Duration, tolerance: C.Duration?, clock: C) {
    guard let delay = delay as? Duration else {
      // No clock of the standard library's (Task.sleep's own are): its platform executor
      // knows how to wait on it.
      if let platform = PlatformExecutorFactory.defaultExecutor as? any SchedulingExecutor {
        platform.enqueue(job, after: delay, tolerance: tolerance, clock: clock)
      } else {
        enqueue(job)
      }
      return
    }
    let (seconds, attoseconds) = delay.components
    let nanoseconds =
      seconds < 0 ? 0
      : seconds >= Self.longestDelay ? Self.longestDelay * 1_000_000_000
      : seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    let job = UnownedJob(job)
    loop.scheduleTask(in: .nanoseconds(nanoseconds)) { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
  }

  func enqueue<C: Clock>(_ job: consuming ExecutorJob, at instant: C.Instant, tolerance: C.Duration?, clock: C) {
    enqueue(job, after: clock.now.duration(to: instant), tolerance: tolerance, clock: clock)
  }
}
