import Testing
import VaccelManifests
import Yams

/// The manifests were written by Yams' encoder until the daemon had to lose Foundation;
/// libyaml's emitter must write every value the same way (Manifests/ itself is compared
/// against a fresh render elsewhere). Yams here is the reference, in the tests only.
@Suite("Manifest YAML without Yams writes what Yams wrote")
struct ManifestYAMLTests {
  struct Sample: Encodable {
    var text: String
    var number = 8
    var flag = true
    var list: [String] = []
    var map: [String: String] = [:]
    var nested: [String: [String: Int]] = ["b": ["z": 1, "a": 2], "a": [:]]
  }

  static func yams(_ object: some Encodable) throws -> String {
    let encoder = YAMLEncoder()
    encoder.options.sortKeys = true
    encoder.options.explicitStart = true
    encoder.options.newLineScalarStyle = .literal
    encoder.options.width = -1
    return try encoder.encode(object)
  }

  @Test(arguments: [
    "plain", "true", "yes", "Off", "8", "-3", "0x1F", "0o17", "1_000", "1:20", "3.5", ".inf", ".NaN", "~", "null", "",
    "=", "<<", "2026-11-30", "2026-11-30T05:00:00Z", "a: b", "- x", "#hash", "x #y", "'quoted'", "\"double\"", "{a}",
    "[a]", "*alias", "&anchor", "!tag", "%pct", "@at", "`tick", "|pipe", ">gt", "?q", "trailing ", " leading",
    "é and ü", "tab\there", "multi\nline\n", "no final newline\nx", "  indented\nblock", "ends with blank\n\n",
    "vaccel.org/accel", "unix:///var/run/vaccel/x.sock", "0.0.0.0:9464", "250m", "160Mi", "v1", "{id}",
    String(repeating: "long ", count: 60),
  ])
  func everyScalarIsWrittenAsYamsWroteIt(_ text: String) throws {
    let sample = Sample(text: text, list: [text, "x"], map: ["key": text])
    let ours = try ManifestYAML.document(sample), theirs = try Self.yams(sample)
    #expect(ours == theirs, "ours:\n\(ours)\nYams:\n\(theirs)")
  }

  /// The one deliberate difference: Yams wrote a key as it came, so a key `true` or `8` read
  /// back as a boolean or a number; it is quoted now. (No manifest has such a key.)
  @Test func aKeyThatReadsAsAnotherTypeIsQuoted() throws {
    let sample = Sample(text: "x", map: ["true": "a", "8": "b", "name": "c"])
    let ours = try ManifestYAML.document(sample)
    #expect(ours.contains("\n  '8': b\n") && ours.contains("\n  'true': a\n") && ours.contains("\n  name: c\n"), "\(ours)")
  }
}
