import ArgumentParser
import Foundation
import VaccelCtlKit
import VaccelDemo

/// `vaccelctl demo` runs this: the daemon in-process against a kubelet emulation. An executable
/// of its own so that vaccelctl, which ships in the image, does not link the daemon.
@main
struct VaccelDemoCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "vaccel-demo",
    abstract: "Run the real daemon against a built-in kubelet emulation in a temp folder: 3 pods, their agents, a session each, a recycled slot.")

  @Option(help: "The agent binary (default: vaccel-rpc-agent on PATH, else the stand-in built beside this program).")
  var agent: String?

  @Flag(help: "Keep the temp folder (sockets, slot folders, checkpoint, agent logs) for a look afterwards.")
  var keep = false

  static func main() async {
    do {
      var command = try parseAsRoot()
      if var command = command as? AsyncParsableCommand { try await command.run() } else { try command.run() }
    } catch let error as CtlError {
      FileHandle.standardError.write(Data("vaccelctl demo: \(error)\n".utf8))
      Foundation.exit(error.exitCode)
    } catch {
      exit(withError: error)
    }
  }

  func run() async throws {
    // This executable's own folder, however it was started (a bare name found on PATH, too).
    let folder = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().path
    var demo = Demo(standinBinary: folder + "/vaccel-standin-agent", agentBinary: agent) { line in print(line) }
    demo.keepFolder = keep
    let started = ContinuousClock.now
    let report = try await demo.run()
    print("demo done in \((ContinuousClock.now - started).formatted(.units(allowed: [.seconds, .milliseconds], width: .narrow))): "
      + "\(report.sessions.count) pods each reached an agent of their own")
  }
}
