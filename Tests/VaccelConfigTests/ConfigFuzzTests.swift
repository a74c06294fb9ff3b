import Foundation
import Testing

@testable import VaccelConfig

/// Mutated and random documents: the loader returns a config that passes validation, or a
/// ConfigError; never a crash, never something half-valid.
@Suite("ConfigLoader under fuzzing")
struct ConfigFuzzTests {
  /// A full config touching every section, the seed every mutation starts from.
  static let seed = """
    version: v1
    logLevel: info
    logFormat: json
    kubelet:
      devicePluginDir: /var/lib/kubelet/device-plugins
      podResourcesSocket: /var/lib/kubelet/pod-resources/kubelet.sock
      recheckInterval: 5s
      podResourcesInterval: 5s
      allocationGrace: 30s
    metrics:
      address: 0.0.0.0:9464
    status:
      mode: "0660"
      group: 100
    runDir: /var/run/vaccel
    stateDir: /var/lib/vaccel-device-plugin
    agent:
      binary: /opt/vaccel/bin/vaccel-rpc-agent
      args: ["-a", "{address}"]
      plugins: [libvaccel-noop.so]
      libraryPath: /opt/vaccel/lib
      logLevel: 2
      env: {RUST_LOG: info}
      probe: session
      restartBackoff: {initial: 100ms, max: 10s, resetAfter: 60s}
    resources:
      - name: vaccel.org/accel
        slots: 8
        warm: 2
        policy: pack
      - name: vaccel.org/accel-vm
        transport: vsock
        basePort: 3000
        slots: 4
      - name: vaccel.org/accel-fc
        agents: runtime
        slots: 4

    """

  /// Replacement values: wrong types, huge values, deep nesting, odd strings.
  static let hostile: [String] = [
    "", "~", "null", "-1", "0", "99999999999999999999999999", "1e308", "-0x10", "0o777", ".inf", "true",
    "[]", "{}", "[1, [2, [3]]]", "{a: {b: {c: d}}}", "\"\\u0000\"", "\"../../etc\"", "'\\n\\n'",
    String(repeating: "x", count: 70_000), String(repeating: "[", count: 5_000) + String(repeating: "]", count: 5_000),
    String(repeating: "{a: ", count: 3_000) + "b" + String(repeating: "}", count: 3_000),
    "&a [*a]", "*nope", "!!binary aGk=", "!custom x", "5000000000000s", "-5s", "1h2m3s4ms", "unix:///x",
  ]

  /// A tiny deterministic generator, so a failure names a reproducible case.
  struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
      state &+= 0x9E37_79B9_7F4A_7C15
      var z = state
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
  }

  static func mutate(_ text: String, using rng: inout SplitMix) -> String {
    var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    for _ in 0..<Int.random(in: 1...4, using: &rng) {
      let index = Int.random(in: 0..<lines.count, using: &rng)
      switch Int.random(in: 0..<8, using: &rng) {
      case 0:  // a value replaced by something hostile
        if let colon = lines[index].firstIndex(of: ":") {
          lines[index] = String(lines[index][...colon]) + " " + hostile.randomElement(using: &rng)!
        }
      case 1: lines.remove(at: index)
      case 2: lines.insert(lines[index], at: index)  // a duplicated key
      case 3: lines.swapAt(index, Int.random(in: 0..<lines.count, using: &rng))
      case 4:  // indentation broken
        lines[index] = String(repeating: " ", count: Int.random(in: 0...7, using: &rng)) + lines[index].trimmingCharacters(in: .whitespaces)
      case 5:  // a random byte somewhere
        var scalars = Array(lines[index].unicodeScalars)
        let byte = Unicode.Scalar(UInt8.random(in: 0...127, using: &rng))
        scalars.insert(byte, at: Int.random(in: 0...scalars.count, using: &rng))
        lines[index] = String(String.UnicodeScalarView(scalars))
      case 6:  // a key renamed
        lines[index] = lines[index].replacingOccurrences(of: "s", with: "z")
      default:  // a whole hostile document
        lines = [hostile.randomElement(using: &rng)!]
      }
      if lines.isEmpty { lines = [""] }
    }
    return lines.joined(separator: "\n")
  }

  /// What any config the loader accepts must satisfy, checked independently of `validate`.
  static func checkValid(_ config: DaemonConfig) {
    #expect(config.runDir.hasPrefix("/") && config.stateDir.hasPrefix("/"))
    #expect(!config.resources.isEmpty)
    #expect(Set(config.resources.map(\.name)).count == config.resources.count)
    #expect(Set(config.resources.map(\.slug)).count == config.resources.count)
    for resource in config.resources {
      #expect(ResourceName.problem(with: resource.name) == nil)
      #expect((1...4096).contains(resource.slots))
      #expect((1...resource.slots).contains(resource.maxPerContainer))
      #expect((0...resource.slots).contains(resource.warm))
      if resource.transport != .unix {
        #expect(resource.basePort >= 1 && resource.basePort + resource.slots - 1 <= 65535)
      }
      if resource.agents == .managed {
        #expect(!resource.agent.binary.isEmpty)
        #expect(resource.agent.args.contains { $0.contains(AgentConfig.addressPlaceholder) })
      }
    }
    #expect(config.kubelet.recheckInterval >= .seconds(1))
    #expect(config.status.mode <= 0o777)
  }

  /// Loads every document on a thread of its own. All suites share one process and its
  /// cooperative pool (two threads on a 2-core machine): these loops, run on the pool, held
  /// both of its threads for seconds under load, and other suites' in-process daemons missed
  /// their probe deadlines and killed healthy agents. (`Task.yield()` in the loops was tried
  /// first and made the other suites' failures more frequent, not less.)
  static func load(_ documents: [String], source: String) async -> [Result<DaemonConfig, ConfigError>] {
    await withCheckedContinuation { continuation in
      Thread {
        continuation.resume(returning: documents.map { text in Result { () throws(ConfigError) in try ConfigLoader.load(yaml: text, source: source) } })
      }.start()
    }
  }

  @Test func theSeedIsValid() throws {
    Self.checkValid(try ConfigLoader.load(yaml: Self.seed, source: "seed"))
  }

  @Test func mutatedDocumentsAreValidOrAnError() async {
    var rng = SplitMix(state: 0x5EED)
    let documents = (0..<3_000).map { _ in Self.mutate(Self.seed, using: &rng) }
    var accepted = 0, rejected = 0
    for (round, outcome) in await Self.load(documents, source: "mutation").enumerated() {
      switch outcome {
      case .success(let config):
        Self.checkValid(config)
        accepted += 1
      case .failure(let error):
        #expect(!error.description.isEmpty, "case \(round)")
        rejected += 1
      }
    }
    // Both outcomes happen: the mutations are neither all fatal nor all harmless.
    #expect(accepted > 100 && rejected > 100, "accepted \(accepted), rejected \(rejected)")
  }

  @Test func randomBytesAreAnError() async {
    var rng = SplitMix(state: 0xB17E5)
    let documents = (0..<1_000).map { _ in
      String(decoding: (0..<Int.random(in: 0...400, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }, as: UTF8.self)
    }
    for (text, outcome) in zip(documents, await Self.load(documents, source: "random")) {
      if case .success = outcome { Issue.record("random bytes were accepted: \(text.debugDescription)") }
    }
  }

  /// Nesting as deep as the 1 MiB file limit allows: an error, not a stack overflow.
  @Test(arguments: ["[", "{a: ", "- "])
  func nestingUpToTheSizeLimitIsAnError(_ opener: String) async {
    let closer = opener == "[" ? "]" : opener == "{a: " ? "}" : ""
    let prefix = "version: v1\nagent: "
    let depth = (ConfigLoader.maxFileBytes - prefix.utf8.count - 1) / (opener.utf8.count + closer.utf8.count)
    let text = prefix + String(repeating: opener, count: depth) + "x" + String(repeating: closer, count: depth)
    #expect(text.utf8.count <= ConfigLoader.maxFileBytes, "the document must reach the parser, not the size check")
    guard case .failure(let error) = await Self.load([text], source: "deep")[0] else {
      Issue.record("a document nested \(depth) deep was accepted")
      return
    }
    #expect(error.description.count < 1_000, "the error quotes a window of the line, not the line")
  }

  @Test(arguments: hostile)
  func hostileWholeDocumentsAreAnError(_ text: String) async {
    guard case .failure(let error) = await Self.load([text], source: "hostile")[0] else {
      Issue.record("accepted: \(text.prefix(80).debugDescription)")
      return
    }
    #expect(error.description.count < 1_000, "\(error.description.prefix(200))")
  }
}
