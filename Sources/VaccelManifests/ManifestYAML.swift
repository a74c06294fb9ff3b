import Yams

/// How every manifest is written: keys sorted (as kubectl prints), multi-line strings as
/// literal blocks, each document opened with `---`. Deterministic, and clean for yamllint.
public enum ManifestYAML {
  public static func document(_ object: some Encodable) throws(ManifestError) -> String {
    let encoder = YAMLEncoder()
    encoder.options.sortKeys = true
    encoder.options.explicitStart = true
    encoder.options.newLineScalarStyle = .literal
    encoder.options.width = -1
    do {
      return try encoder.encode(object)
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
