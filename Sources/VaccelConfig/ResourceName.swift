/// Kubernetes extended resource names, checked the way the kubelet checks them at Register
/// (`IsExtendedResourceName`): `domain/name`, not in the `kubernetes.io` namespace, and
/// `requests.<name>` a valid qualified name.
public enum ResourceName {
  public static func slug(of name: String) -> String {
    guard let slash = name.lastIndex(of: "/") else { return name }
    return String(name[name.index(after: slash)...])
  }

  /// Why `name` is not a valid extended resource name, or nil when it is.
  public static func problem(with name: String) -> String? {
    let parts = name.split(separator: "/", omittingEmptySubsequences: false)
    guard parts.count == 2 else {
      return "'\(name)' must have the form <domain>/<name>, e.g. vaccel.org/accel"
    }
    let (domain, local) = (String(parts[0]), String(parts[1]))
    if domain == "kubernetes.io" || domain.hasSuffix(".kubernetes.io") {
      return "'\(name)' is in the kubernetes.io namespace, which is reserved for native resources"
    }
    if name.hasPrefix("requests.") {
      return "'\(name)' must not start with 'requests.'"
    }
    if let problem = dnsSubdomainProblem("requests." + domain) {
      return "domain '\(domain)' of '\(name)' \(problem)"
    }
    if let problem = qualifiedNamePartProblem(local) {
      return "name part '\(local)' of '\(name)' \(problem)"
    }
    return nil
  }

  // By the ASCII value: the kubelet's rules are ASCII, and Character's isLowercase and isNumber
  // read the Unicode tables even for an ASCII letter (pages the daemon would map for this alone).
  private static func isLowerAlnum(_ c: Character) -> Bool {
    guard let v = c.asciiValue else { return false }
    return (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(v) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(v)
  }

  private static func isAlnum(_ c: Character) -> Bool {
    guard let v = c.asciiValue else { return false }
    return isLowerAlnum(c) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(v)
  }

  private static func dnsSubdomainProblem(_ value: String) -> String? {
    guard value.count <= 253 else { return "is longer than 253 characters" }
    for label in value.split(separator: ".", omittingEmptySubsequences: false) {
      guard let first = label.first, let last = label.last, isLowerAlnum(first), isLowerAlnum(last),
        label.allSatisfy({ isLowerAlnum($0) || $0 == "-" })
      else {
        return "must be a DNS subdomain: lower-case letters, digits, '-' and '.', "
          + "each label starting and ending with a letter or digit"
      }
    }
    return nil
  }

  private static func qualifiedNamePartProblem(_ value: String) -> String? {
    guard !value.isEmpty else { return "is empty" }
    guard value.count <= 63 else { return "is longer than 63 characters" }
    guard let first = value.first, let last = value.last, isAlnum(first), isAlnum(last),
      value.allSatisfy({ isAlnum($0) || $0 == "-" || $0 == "_" || $0 == "." })
    else {
      return "must consist of letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
    }
    return nil
  }
}
