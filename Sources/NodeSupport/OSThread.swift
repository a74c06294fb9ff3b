#if canImport(Glibc)
import Glibc
#endif

/// A detached OS thread that runs `body` once: for the blocking reads (inotify, pidfds) that
/// must never hold the thread that runs tasks (the daemon's event loop, or Swift's default
/// pool). What Foundation's `Thread` gave, without linking Foundation into the daemon.
public enum OSThread {
  private final class Body {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
  }

  /// Starts the thread.
  public static func start(_ body: @escaping @Sendable () -> Void) {
    let context = Unmanaged.passRetained(Body(body)).toOpaque()
    var thread = pthread_t()
    let result = pthread_create(&thread, nil, { context in
      guard let context else { return nil }
      Unmanaged<Body>.fromOpaque(context).takeRetainedValue().run()
      return nil
    }, context)
    guard result == 0 else {
      Unmanaged<Body>.fromOpaque(context).release()
      fatalError("pthread_create failed: \(String(cString: strerror(result)))")
    }
    pthread_detach(thread)
  }
}
