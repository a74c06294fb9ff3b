@testable import DevicePlugin
import Foundation
import Testing

/// The checkpoint is written without JSONEncoder (its per-slot dictionaries stayed resident at
/// 1,024 slots); what is written must still be exactly what JSONEncoder wrote, and read back.
@Suite("Checkpoint JSON")
struct CheckpointJSONTests {
  /// Every field present and absent, two resources, and strings that need escaping: quotes,
  /// backslashes, every control character, a slash, non-ASCII.
  static let checkpoint: Checkpoint = {
    let awkward = "a\"b\\c/d é ✓ " + String((0..<0x20).map { Character(Unicode.Scalar(UInt8($0))) }) + "\u{7F}"
    return Checkpoint(resources: [
      "vaccel.org/accel": [
        .init(
          id: "accel-0", allocated: true, holder: Holder(namespace: "default", pod: awkward, container: "c"),
          generation: 3, pid: 4242, endpoint: "unix:///run/vaccel/accel/accel-0/a1b2/vaccel.sock"),
        .init(id: "accel-1", allocated: false, holder: nil, generation: 0, pid: nil, endpoint: ""),
      ],
      "example.com/vm": [
        .init(id: awkward, allocated: true, holder: nil, generation: Int.max, pid: Int32.min, endpoint: awkward),
      ],
      "empty.example/none": [],
    ])
  }()

  @Test func theBytesAreJSONEncodersWithSortedKeys() throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    let expected = try encoder.encode(Self.checkpoint)
    let written = Self.checkpoint.json()
    #expect(String(decoding: written, as: UTF8.self) == String(decoding: expected, as: UTF8.self))
    #expect(Checkpoint().json() == Array(try encoder.encode(Checkpoint())))
  }

  @Test func whatIsSavedLoadsBackEqual() throws {
    let directory = try TestDirectory()
    let store = CheckpointStore(stateDir: directory.path)
    try store.save(Self.checkpoint)
    #expect(try store.load() == Self.checkpoint)
    #expect(try JSONDecoder().decode(Checkpoint.self, from: Data(Self.checkpoint.json())) == Self.checkpoint)
  }
}
