/// What this build calls itself: in `--version`, `build_info`, the status API and the
/// image tag the manifests reference.
public enum BuildInfo {
  public static let version = "0.1.0"
}
