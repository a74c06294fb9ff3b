import Foundation
import Testing
import VaccelManifests

/// The real `vaccelctl` binary: exit codes and one-line errors.
@Suite("vaccelctl executable")
struct VaccelctlExecutableTests {
  static var vaccelctl: String { Repository.built("vaccelctl") }

  @Test func anUnreachableDaemonIsTwoShortLinesAndExit1() async throws {
    let result = try await Tool.run(Self.vaccelctl, ["status", "--socket", "/nonexistent/device-plugin.sock"])
    #expect(result.status == 1)
    #expect(result.output.isEmpty)
    let lines = result.error.split(separator: "\n")
    #expect(lines.count == 2)
    #expect(lines.allSatisfy { $0.count <= 120 }, "\(lines)")
    #expect(result.error.contains("/nonexistent/device-plugin.sock") && result.error.contains("no such socket"))
  }

  /// The status socket is found where the daemon puts it: its config, then its variables.
  @Test func statusFindsTheSocketAsTheDaemonDoes() async throws {
    let scratch = try Scratch()
    defer { scratch.remove() }
    let config = try scratch.write("config.yaml", "version: v1\nrunDir: \(scratch.sub("run"))\n")
    let fromConfig = try await Tool.run(Self.vaccelctl, ["status", "--config", config], environment: ["PATH": "/usr/bin:/bin"])
    #expect(fromConfig.status == 1)
    #expect(fromConfig.error.contains(scratch.sub("run") + "/device-plugin.sock"), "\(fromConfig.error)")

    let fromEnvironment = try await Tool.run(
      Self.vaccelctl, ["status"], environment: ["VACCEL_DP_CONFIG": config, "VACCEL_DP_STATUS_SOCKET": scratch.sub("s.sock")])
    #expect(fromEnvironment.error.contains(scratch.sub("s.sock")), "\(fromEnvironment.error)")

    let badConfig = try await Tool.run(Self.vaccelctl, ["status", "--config", scratch.sub("missing.yaml")])
    #expect(badConfig.status == 2)
    #expect(badConfig.error.contains("missing.yaml: no such file"), "\(badConfig.error)")
  }

  @Test(arguments: [
    ["status", "-o", "xml"],
    ["manifests", "--only", "Foo"],
    ["manifests", "--runtime-class", "bad"],
    ["manifests", "--namespace", "Bad_NS"],
    ["manifests", "containerd", "--image", "x"],
    ["manifests", "containerd", "--k3s-auto-deploy"],
    ["manifests", "--config", "/nonexistent.yaml"],
    ["doctor", "--config", "/nonexistent.yaml"],
  ])
  func badInputExits2(_ arguments: [String]) async throws {
    let result = try await Tool.run(Self.vaccelctl, arguments)
    #expect(result.status == 2, "\(arguments): \(result.error)")
    #expect(!result.error.isEmpty)
  }

  /// A missing config reads the same wherever vaccelctl reads one.
  @Test(arguments: [["manifests", "--config", "/nonexistent.yaml"], ["doctor", "--config", "/nonexistent.yaml"]])
  func aMissingConfigIsNoSuchFileEverywhere(_ arguments: [String]) async throws {
    let result = try await Tool.run(Self.vaccelctl, arguments)
    #expect(result.status == 2)
    #expect(result.error.contains("/nonexistent.yaml: no such file"), "\(result.error)")
  }

  /// `manifests --help` shows what `manifests` takes; `containerd` only what it uses.
  @Test func manifestsHelpShowsItsOptions() async throws {
    let help = try await Tool.run(Self.vaccelctl, ["manifests", "--help"])
    for option in ["--k3s", "--image", "--namespace", "--config", "--runtime-class", "--only", "--k3s-auto-deploy", "containerd"] {
      #expect(help.output.contains(option), "\(option) missing from:\n\(help.output)")
    }
    let containerd = try await Tool.run(Self.vaccelctl, ["manifests", "containerd", "--help"])
    #expect(containerd.output.contains("--k3s") && !containerd.output.contains("--image"), "\(containerd.output)")
    // The old spelling still renders.
    let render = try await Tool.run(Self.vaccelctl, ["manifests", "render", "--only", "Namespace"])
    #expect(render.status == 0 && render.output.contains("kind: Namespace"))
  }

  /// `vaccelctl demo` runs vaccel-demo in its place: its words and exit code come through.
  @Test func demoRunsTheDemoExecutable() async throws {
    let result = try await Tool.run(Self.vaccelctl, ["demo", "--agent", "/nonexistent/vaccel-rpc-agent"])
    #expect(result.status == 1)
    #expect(result.error.contains("--agent /nonexistent/vaccel-rpc-agent does not exist"), "\(result.error)")
  }

  @Test func manifestsPrintsTheRender() async throws {
    let result = try await Tool.run(Self.vaccelctl, ["manifests", "--k3s"])
    #expect(result.status == 0)
    var options = ManifestOptions()
    options.k3s = true
    #expect(result.output == (try ManifestRenderer(options: options).render()))
  }
}

/// `vaccelctl probe`: one session round trip with an agent, as an operator runs it in a pod or VM.
@Suite("vaccelctl probe")
struct ProbeCommandTests {
  /// The stand-in agent on a fresh unix socket, returned once it says it listens.
  static func agent(at socket: String) async throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: Repository.built("vaccel-standin-agent"))
    process.arguments = ["-a", "unix://" + socket]
    let stderr = Pipe()
    process.standardError = stderr
    process.standardOutput = FileHandle.nullDevice
    try process.run()
    let handle = stderr.fileHandleForReading
    let listening: Bool = await withCheckedContinuation { continuation in
      Thread {
        var seen = ""
        while case let data = handle.availableData, !data.isEmpty {
          seen += String(decoding: data, as: UTF8.self)
          if seen.contains("Listening on") { return continuation.resume(returning: true) }
        }
        continuation.resume(returning: false)
      }.start()
    }
    try #require(listening, "the stand-in agent did not start")
    return process
  }

  @Test func anAnsweringAgentIsExit0WithItsSession() async throws {
    let scratch = try Scratch()
    defer { scratch.remove() }
    let agent = try await Self.agent(at: scratch.sub("vaccel.sock"))
    defer { agent.terminate() }
    let result = try await Tool.run(VaccelctlExecutableTests.vaccelctl, ["probe", "unix://" + scratch.sub("vaccel.sock")])
    #expect(result.status == 0, "\(result.error)")
    #expect(result.output.hasPrefix("ok: session 1 created and destroyed at unix://\(scratch.sub("vaccel.sock")) in "), "\(result.output)")

    // No address: the pod's own, from the environment the daemon gave it.
    let fromEnvironment = try await Tool.run(
      VaccelctlExecutableTests.vaccelctl, ["probe"], environment: ["VACCEL_RPC_ADDRESS": "unix://" + scratch.sub("vaccel.sock")])
    #expect(fromEnvironment.status == 0, "\(fromEnvironment.error)")
    #expect(fromEnvironment.output.hasPrefix("ok: session 2 "))
  }

  @Test func nothingListeningIsExit1NamingTheAddress() async throws {
    let result = try await Tool.run(VaccelctlExecutableTests.vaccelctl, ["probe", "unix:///nonexistent/vaccel.sock", "--timeout", "2"])
    #expect(result.status == 1)
    #expect(result.error.contains("no vAccel session with the agent at unix:///nonexistent/vaccel.sock"), "\(result.error)")
    #expect(result.error.split(separator: "\n").count == 1)
  }

  @Test(arguments: [["probe", "http://x"], ["probe", "vsock://2:port"], ["probe", "unix:///x", "--timeout", "0"], ["probe"]])
  func aBadAddressIsExit2(_ arguments: [String]) async throws {
    let result = try await Tool.run(VaccelctlExecutableTests.vaccelctl, arguments, environment: ["PATH": "/usr/bin:/bin"])
    #expect(result.status == 2, "\(arguments): \(result.error)")
    #expect(!result.error.isEmpty)
  }
}
