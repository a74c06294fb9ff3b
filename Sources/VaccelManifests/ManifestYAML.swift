#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import VaccelYAML

/// How every manifest is written: keys sorted (as kubectl prints), multi-line strings as
/// literal blocks, each document opened with `---`. Deterministic, and clean for yamllint.
/// The object goes through JSON (Foundation's encoder, the Codable keys Kubernetes uses), is
/// read back with libyaml (JSON is YAML) and written by libyaml's emitter: no Yams, so the
/// daemon, which publishes RuntimeClasses with it, links no Foundation.
public enum ManifestYAML {
  public static func document(_ object: some Encodable) throws(ManifestError) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    do {
      let json = String(decoding: try encoder.encode(object), as: UTF8.self)
      guard let node = try YAMLComposer.compose(json) else { throw ManifestError.badConfig("\(type(of: object)) encodes as nothing") }
      return try YAMLEmitter.document(node)
    } catch let error as ManifestError {
      throw error
    } catch {
      throw .badConfig("cannot encode \(type(of: object)) as YAML: \(error)")
    }
  }

  public static func stream(_ objects: [any Encodable]) throws(ManifestError) -> String {
    var out = ""
    for object in objects {
      out += try document(object)
    }
    return out
  }
}
