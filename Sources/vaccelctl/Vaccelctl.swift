import ArgumentParser
import Foundation
import VaccelCtlKit
import VaccelConfig
import VaccelManifests

/// Thin entry point: every command parses its flags and calls VaccelCtlKit. Exit codes: 0 ok,
/// 1 the daemon or node is not well (or not reachable), 2 bad flags or files.
@main
struct Vaccelctl: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "vaccelctl",
    abstract: "Operate vaccel-device-plugin: what runs where, the manifests that deploy it, node checks, a local demo.",
    version: BuildInfo.version,
    subcommands: [Status.self, Probe.self, Manifests.self, Doctor.self, Demo.self])

  static func main() async {
    do {
      var command = try parseAsRoot()
      if var command = command as? AsyncParsableCommand {
        try await command.run()
      } else {
        try command.run()
      }
    } catch let error as CtlError {
      FileHandle.standardError.write(Data("vaccelctl: \(error)\n".utf8))
      Foundation.exit(error.exitCode)
    } catch let error as ManifestError {
      FileHandle.standardError.write(Data("vaccelctl: \(error)\n".utf8))
      Foundation.exit(2)
    } catch {
      if exitCode(for: error) == .validationFailure {
        FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
        Foundation.exit(2)
      }
      exit(withError: error)
    }
  }
}

extension OutputFormat: ExpressibleByArgument {}
extension ExamplePods: ExpressibleByArgument {}

struct Status: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Registration, slots, holders and agents of the daemon on this node.",
    discussion: "In a cluster: kubectl exec -n vaccel-system ds/vaccel-device-plugin -- vaccelctl status")

  @Option(name: .shortAndLong, help: "table (default), wide, json or yaml.")
  var output: OutputFormat = .table

  @Option(help: "The daemon's status socket (default: as the daemon finds it: its config, $\(StatusClient.socketEnvironment), else \(StatusClient.defaultSocket)).")
  var socket: String?

  @Option(help: "The daemon's config, to find the status socket where it does (default: $VACCEL_DP_CONFIG).")
  var config: String?

  @Flag(name: .shortAndLong, help: "Print again after every change (a table redraws in a terminal), until Ctrl-C or the daemon stops.")
  var watch = false

  @Argument(help: "Only these resources (e.g. vaccel.org/accel).")
  var resources: [String] = []

  func run() async throws {
    let path = try StatusClient.socket(given: socket, configPath: config, environment: ProcessInfo.processInfo.environment)
    guard watch else {
      let status = try await StatusClient(socketPath: path).fetch(resources: resources)
      print(try StatusFormat.render(status, as: output), terminator: "")
      return
    }
    let output = output
    let redraw = isatty(STDOUT_FILENO) == 1 && (output == .table || output == .wide)
    try await StatusClient(socketPath: path, timeout: .seconds(5)).watch(resources: resources) { status in
      let text = try StatusFormat.render(status, as: output)
      // A terminal: home and clear, then the table. Elsewhere: one document after another.
      let shown = redraw ? "\u{1B}[H\u{1B}[2J" + text : (output == .yaml ? "---\n" + text : text + (output == .json ? "" : "\n"))
      FileHandle.standardOutput.write(Data(shown.utf8))
    }
  }
}

struct Probe: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "One vAccel session round trip with an agent; exit 0 if it answered, 1 if not, 2 for a bad address.",
    discussion: """
      From inside a pod or VM guest, with no address: the one the daemon gave the pod ($VACCEL_RPC_ADDRESS).
      Examples: vaccelctl probe unix:///var/run/vaccel/vaccel.sock; vaccelctl probe vsock://2:2048
      """)

  @Argument(help: "unix:///path, vsock://CID:PORT or tcp://HOST:PORT (default: $VACCEL_RPC_ADDRESS).")
  var address: String?

  @Option(help: "Give up after this many seconds.")
  var timeout: Double = 5

  func run() async throws {
    guard timeout > 0, timeout <= 3600 else { throw CtlError.usage("--timeout \(timeout): use more than 0 and at most 3600 seconds") }
    let target = try EndpointProbe.address(address, environment: ProcessInfo.processInfo.environment)
    let result = try await EndpointProbe.run(target, timeout: .milliseconds(Int(timeout * 1000)))
    print("ok: session \(result.sessionID) created and destroyed at \(result.address) in "
      + result.elapsed.formatted(.units(allowed: [.seconds, .milliseconds], width: .narrow)))
  }
}

struct Manifests: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Print the Kubernetes objects that deploy the daemon (kubectl apply -f -).",
    discussion: "Namespace, ServiceAccount, ConfigMap, DaemonSet, RuntimeClasses; --only Pod gives the example pods.",
    subcommands: [Containerd.self, Render.self])

  /// What both the objects and the containerd entries depend on.
  struct Common: ParsableArguments {
    @Option(help: "Daemon config (version: v1) for the ConfigMap; validated here as the daemon would.")
    var config: String?

    @Flag(help: "k3s nodes: control-plane tolerations, k3s containerd config for doctor; k3s's containerd templates.")
    var k3s = false

    @Option(name: .customLong("runtime-class"), help: "NAME=HANDLER[@RESOURCE], repeatable; replaces the defaults.")
    var runtimeClasses: [String] = []

    func manifestOptions() throws -> ManifestOptions {
      var options = ManifestOptions()
      options.k3s = k3s
      if let config {
        let text: String
        do {
          text = try ConfigLoader.readFile(config)
        } catch {
          throw CtlError.usage("--config \(error)")
        }
        options.configText = text
        options.configSource = config
      }
      if !runtimeClasses.isEmpty {
        options.runtimeClasses = try runtimeClasses.map { try RuntimeClassSpec(parsing: $0) }
      }
      return options
    }
  }

  /// What only the objects depend on.
  struct Objects: ParsableArguments {
    @Option(help: "Namespace of the daemon's objects.")
    var namespace = ManifestOptions.defaultNamespace

    @Option(help: "The daemon's image.")
    var image = ManifestOptions.defaultImage

    @Flag(help: "k3s: the daemon writes the RuntimeClasses into the server's auto-deploy folder (implies --k3s).")
    var k3sAutoDeploy = false

    @Option(help: "Only this kind (Namespace, ServiceAccount, ConfigMap, DaemonSet, RuntimeClass, Pod); repeatable.")
    var only: [String] = []

    @Option(help: "With --only Pod: the plain example, the VM-sandboxed ones (vm), or all.")
    var examples: ExamplePods = .all

    func render(_ common: Common) throws -> String {
      var options = try common.manifestOptions()
      options.namespace = namespace
      options.image = image
      options.k3s = options.k3s || k3sAutoDeploy
      options.k3sAutoDeploy = k3sAutoDeploy
      options.examples = examples
      if !only.isEmpty {
        options.only = Set(try only.map { name in
          guard let kind = ManifestKind(name: name) else {
            throw CtlError.usage("--only \(name): not one of \(ManifestKind.allCases.map(\.rawValue).joined(separator: ", "))")
          }
          return kind
        })
      }
      return try ManifestRenderer(options: options).render()
    }
  }

  @OptionGroup var common: Common
  @OptionGroup var objects: Objects

  func run() throws {
    print(try objects.render(common), terminator: "")
  }

  /// `manifests render`: what `manifests` alone does (kept for scripts written before 0.2).
  struct Render: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "render", abstract: "The same as `manifests`.", shouldDisplay: false)

    @OptionGroup var common: Common
    @OptionGroup var objects: Objects

    func run() throws {
      print(try objects.render(common), terminator: "")
    }
  }

  struct Containerd: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "The containerd runtime entries for the RuntimeClass handlers (config.toml.tmpl and config-v3.toml.tmpl with --k3s).")

    @OptionGroup var common: Common
    /// Its options parse after `containerd` too: any of the objects' own is refused here.
    @ParentCommand var manifests: Manifests

    func validate() throws {
      let objects = manifests.objects
      let given = [
        objects.namespace != ManifestOptions.defaultNamespace ? "--namespace" : nil,
        objects.image != ManifestOptions.defaultImage ? "--image" : nil,
        objects.k3sAutoDeploy ? "--k3s-auto-deploy" : nil,
        objects.only.isEmpty ? nil : "--only",
        objects.examples == .all ? nil : "--examples",
      ].compactMap { $0 }
      if let first = given.first {
        throw ValidationError("\(first) does not apply to `manifests containerd` (it takes --config, --k3s, --runtime-class)")
      }
    }

    @Option(help: "With --k3s: dropin (a file for the folder k3s's config imports), template (k3s before that import), or auto: what this node's generated config.toml says (template where there is none).")
    var k3sForm: K3sFormChoice = .auto

    enum K3sFormChoice: String, ExpressibleByArgument, CaseIterable {
      case auto, dropin, template
    }

    func run() throws {
      let renderer = try ManifestRenderer(options: try common.manifestOptions())
      let handlers = renderer.runtimeClasses.map(\.spec.handler)
      let generated = (try? String(contentsOfFile: ContainerdConfig.k3sConfigDir + "/config.toml", encoding: .utf8)).map {
        ContainerdConfig.k3sForm(generated: $0)
      }
      switch (common.k3s, k3sForm) {
      case (true, .dropin):
        // Without the node's config, containerd 2.x's folder (what current k3s generates).
        let form = generated ?? ContainerdConfig.K3sForm(version: 3, dropInDir: nil)
        let folder = form.version == 3 ? "config-v3.toml.d" : "config.toml.d"
        print(ContainerdConfig.k3sDropIn(
          handlers: handlers, form: .init(version: form.version, dropInDir: ContainerdConfig.k3sConfigDir + "/" + folder)), terminator: "")
      case (true, .auto) where generated?.dropInDir != nil:
        print(ContainerdConfig.k3sDropIn(handlers: handlers, form: generated!), terminator: "")
      case (false, .dropin):
        throw ValidationError("--k3s-form dropin needs --k3s")
      default:
        print(ContainerdConfig.snippet(handlers: handlers, k3s: common.k3s), terminator: "")
      }
    }
  }
}

struct Doctor: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Check this node for what the daemon needs; one PASS/FAIL line each, exit 1 if any failed.")

  @Option(help: "Daemon config to check against (default: $VACCEL_DP_CONFIG, else \(defaultConfig) if present, else the defaults).")
  var config: String?

  static let defaultConfig = "/etc/vaccel-device-plugin/config.yaml"

  func run() async throws {
    let environment = ProcessInfo.processInfo.environment
    var path = config ?? environment[ConfigLoader.Environment.config]
    if path == nil, FileManager.default.fileExists(atPath: Self.defaultConfig) { path = Self.defaultConfig }
    let daemonConfig: DaemonConfig
    do {
      daemonConfig = try ConfigLoader.load(flags: ConfigOverrides(configPath: path), environment: environment)
    } catch {
      throw CtlError.usage("invalid configuration: \(error)")
    }
    print("config: \(path ?? "built-in defaults")")
    let checks = await VaccelCtlKit.Doctor(config: daemonConfig).run()
    print(VaccelCtlKit.Doctor.render(checks), terminator: "")
    let code = VaccelCtlKit.Doctor.exitCode(checks)
    if code != 0 { throw ExitCode(code) }
  }
}

struct Demo: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Run the real daemon against a built-in kubelet emulation in a temp folder: 3 pods, their agents, a session each, a recycled slot.",
    discussion: "Runs vaccel-demo, built beside vaccelctl (vaccelctl itself links no daemon).")

  @Option(help: "The agent binary (default: vaccel-rpc-agent on PATH, else the stand-in built beside vaccelctl).")
  var agent: String?

  @Flag(help: "Keep the temp folder (sockets, slot folders, checkpoint, agent logs) for a look afterwards.")
  var keep = false

  func run() throws {
    // This executable's own folder, however it was started (a bare name found on PATH, too).
    let folder = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().path
    let demo = folder + "/vaccel-demo"
    guard FileManager.default.isExecutableFile(atPath: demo) else {
      throw CtlError.failed("\(demo) does not exist: the demo is built beside vaccelctl by `swift build`")
    }
    let arguments = [demo] + (agent.map { ["--agent", $0] } ?? []) + (keep ? ["--keep"] : [])
    // The demo in this process's place: its output, its signals, its exit code.
    let argv = arguments.map { strdup($0) } + [nil]
    execv(demo, argv)
    throw CtlError.failed("cannot run \(demo): \(String(cString: strerror(errno)))")
  }
}
