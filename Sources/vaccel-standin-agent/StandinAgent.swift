import Foundation
import VaccelAgentAPI
import VaccelRPC

/// A stand-in for `vaccel-rpc-agent`, for tests and the demo, behaving as vaccel-contract.md §1
/// describes the real one: `-a ADDRESS`, ready lines on stderr, ttrpc `CreateSession` /
/// `DestroySession` / `ImageClassification`, exit 2 on a bad flag or an unloadable plugin,
/// abort (exit 134) on a bad address or an address in use (the socket file is never removed),
/// exit 0 on SIGTERM/SIGINT/SIGHUP.
///
/// Fault knobs (environment): `STANDIN_EXIT_AFTER_MS` (+ `STANDIN_EXIT_CODE`, default 1),
/// `STANDIN_HANG=startup|requests`, `STANDIN_REFUSE_SESSIONS=1`; `STANDIN_VACCEL_RUNDIR` (with
/// `STANDIN_RUNDIR_RACE_MS`) emulates libvaccel's racy run folder, which the real one keeps at
/// `/run/user/<uid>/vaccel`.
@main
enum StandinAgent {
  /// Like the real agent (vaccel-rust 0.5.0): no `--version`, no `-V`; `--version` is a usage error.
  static let usage = "Usage: vaccel-rpc-agent [OPTIONS]\n\nOptions:\n  -a, --server-address <ADDRESS>  [default: tcp://127.0.0.1:65500]\n      --vaccel-config <CONFIG>\n  -h, --help\n"

  static func main() async {
    for signal in [SIGTERM, SIGINT, SIGHUP] {
      Glibc.signal(signal) { _ in _exit(0) }
    }
    let environment = ProcessInfo.processInfo.environment
    let address = parseArguments(Array(CommandLine.arguments.dropFirst()))
    checkPlugins(environment)
    createRunFolder(environment)

    if environment["STANDIN_HANG"] == "startup" {
      while true { pause() }
    }
    let parsed: AgentAddress
    do {
      parsed = try AgentAddress(parsing: address)
    } catch {
      panic("invalid server address: \(error)")
    }
    let listener: TTRPCServer.Listener
    do {
      listener = try await TTRPCServer.bind(parsed)
    } catch {
      panic("could not bind \(address): \(error)")
    }
    if !["warn", "error", "off"].contains(environment["RUST_LOG"]?.lowercased() ?? "") {
      log("vAccel RPC agent started")
      log("Listening on '\(address)', press Ctrl+C to exit")
    }
    if let after = environment["STANDIN_EXIT_AFTER_MS"].flatMap(Int.init) {
      let code = environment["STANDIN_EXIT_CODE"].flatMap(Int32.init) ?? 1
      Task {
        try? await Task.sleep(for: .milliseconds(after))
        log("exiting with \(code) (STANDIN_EXIT_AFTER_MS)")
        exit(code)
      }
    }
    let sessions = Sessions(
      refuse: environment["STANDIN_REFUSE_SESSIONS"] == "1", hang: environment["STANDIN_HANG"] == "requests")
    do {
      try await TTRPCServer.serve(listener) { await sessions.handle($0) }
    } catch {
      panic("server failed: \(error)")
    }
  }

  static func parseArguments(_ arguments: [String]) -> String {
    var address = "tcp://127.0.0.1:65500"
    var index = 0
    func value(_ flag: String) -> String {
      index += 1
      guard index < arguments.count else { usageError("a value is required for '\(flag)' but none was supplied") }
      return arguments[index]
    }
    while index < arguments.count {
      let argument = arguments[index]
      switch argument {
      case "-a", "--server-address": address = value(argument)
      case "--vaccel-config": _ = value(argument)
      case "-h", "--help":
        print(usage)
        exit(0)
      default:
        if argument.hasPrefix("--server-address=") {
          address = String(argument.dropFirst("--server-address=".count))
        } else if !argument.hasPrefix("--vaccel-config=") {
          usageError("unexpected argument '\(argument)' found")
        }
      }
      index += 1
    }
    return address
  }

  /// Like libvaccel's `create_rundir`, at load time: the root made if missing, with a window
  /// between the check and the mkdir (`STANDIN_RUNDIR_RACE_MS` widens it) in which another
  /// agent can win; the loser exits 20. Then a folder of this process's own inside.
  static func createRunFolder(_ environment: [String: String]) {
    guard let root = environment["STANDIN_VACCEL_RUNDIR"] else { return }
    var info = stat()
    if stat(root, &info) != 0 {
      if let window = environment["STANDIN_RUNDIR_RACE_MS"].flatMap(UInt32.init) { usleep(window * 1000) }
      if mkdir(root, 0o700) != 0 {
        log("[ERROR] Path \(root) exists but is not a directory")
        log("[ERROR] Could not create root rundir")
        exit(20)
      }
    } else if info.st_mode & S_IFMT != S_IFDIR {
      log("[ERROR] Path \(root) exists but is not a directory")
      log("[ERROR] Could not create root rundir")
      exit(20)
    }
    var template = Array("\(root)/XXXXXX".utf8CString)
    guard mkdtemp(&template) != nil else {
      log("[ERROR] Could not create rundir")
      exit(20)
    }
  }

  /// Like libvaccel: each plugin in VACCEL_PLUGINS (file name or path, `:`-separated) must load.
  static func checkPlugins(_ environment: [String: String]) {
    guard let list = environment["VACCEL_PLUGINS"] ?? environment["VACCEL_BACKENDS"], !list.isEmpty else { return }
    let searchPath = (environment["LD_LIBRARY_PATH"] ?? "").split(separator: ":").map(String.init)
      + ["/usr/local/lib", "/usr/lib", "/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu"]
    for plugin in list.split(separator: ":").map(String.init) {
      let candidates = plugin.contains("/") ? [plugin] : searchPath.map { "\($0)/\(plugin)" }
      guard candidates.contains(where: { FileManager.default.isReadableFile(atPath: $0) }) else {
        log("[ERROR] Could not load plugin \(plugin): not found")
        exit(2)
      }
    }
  }

  static func log(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
  }

  static func usageError(_ message: String) -> Never {
    log("error: \(message)\n\n\(usage)")
    exit(2)
  }

  /// As a Rust panic with panic=abort: message on stderr, then SIGABRT (exit 134).
  static func panic(_ message: String) -> Never {
    log("thread 'main' panicked: \(message)")
    Glibc.signal(SIGABRT, SIG_DFL)  // a plain abort, without the Swift runtime's crash report
    abort()
  }
}

actor Sessions {
  private var next: Int64 = 1
  private var open: Set<Int64> = []
  private let refuse: Bool
  private let hang: Bool

  init(refuse: Bool, hang: Bool) {
    self.refuse = refuse
    self.hang = hang
  }

  func handle(_ request: Ttrpc_Request) async -> Ttrpc_Response {
    if hang {
      try? await Task.sleep(for: .seconds(86_400))
    }
    guard request.service == VaccelAgentService.sync else {
      return TTRPCServer.failure(TTRPCCode.unimplemented, "unknown service \(request.service)")
    }
    do {
      switch request.method {
      case VaccelAgentService.Method.createSession:
        guard !refuse else { return TTRPCServer.failure(TTRPCCode.unavailable, "sessions refused (STANDIN_REFUSE_SESSIONS)") }
        _ = try Vaccel_Session_CreateRequest(serializedBytes: request.payload)
        let id = next
        next += 1
        open.insert(id)
        StandinAgent.log("[INFO] session:\(id) created")
        return TTRPCServer.reply(try Vaccel_Session_CreateResponse.with { $0.sessionID = id }.serializedBytes())
      case VaccelAgentService.Method.destroySession:
        let destroy = try Vaccel_Session_DestroyRequest(serializedBytes: request.payload)
        guard open.remove(destroy.sessionID) != nil else {
          return TTRPCServer.failure(TTRPCCode.invalidArgument, "Unknown session \(destroy.sessionID)")
        }
        StandinAgent.log("[INFO] session:\(destroy.sessionID) destroyed")
        return TTRPCServer.reply(try Vaccel_Empty_Empty().serializedBytes())
      case VaccelAgentService.Method.imageClassification:
        let classify = try Vaccel_Image_Request(serializedBytes: request.payload)
        guard open.contains(classify.sessionID) else {
          return TTRPCServer.failure(TTRPCCode.invalidArgument, "Unknown session \(classify.sessionID)")
        }
        StandinAgent.log("[INFO] session:\(classify.sessionID) Image classification")
        return TTRPCServer.reply(try Vaccel_Image_Response.with {
          $0.tags = Data("This is a dummy classification tag!".utf8)
        }.serializedBytes())
      default:
        return TTRPCServer.failure(TTRPCCode.unimplemented, "unknown method \(request.method)")
      }
    } catch {
      return TTRPCServer.failure(TTRPCCode.invalidArgument, "bad request: \(error)")
    }
  }
}
