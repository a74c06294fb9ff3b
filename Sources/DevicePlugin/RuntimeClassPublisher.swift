#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Logging
import NodeSupport
import VaccelConfig
import VaccelManifests

/// Writes the RuntimeClasses for this daemon's resources into a k3s server's auto-deploy
/// folder (k3s applies what appears there), atomically, so k3s never reads half a file.
/// Only on nodes where that folder exists: k3s agents have none.
enum RuntimeClassPublisher {
  static let fileName = "vaccel-device-plugin-runtimeclasses.yaml"

  enum Outcome: Equatable {
    case written(path: String, classes: Int)
    case noServerHere
    case nothingToWrite
  }

  static func publish(config: DaemonConfig, logger: Logger) -> Outcome? {
    let folder = config.k3sAutoDeployDir
    guard !folder.isEmpty else { return nil }
    var info = stat()
    guard lstat(folder, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
      logger.info("no k3s server on this node; RuntimeClasses not auto-deployed", metadata: ["folder": "\(folder)"])
      return .noServerHere
    }
    let classes = ManifestRenderer.defaultRuntimeClasses(for: config)
    guard !classes.isEmpty else {
      logger.info("no resource serves VM sandboxes; no RuntimeClasses to auto-deploy")
      return .nothingToWrite
    }
    let path = folder.joiningPath(fileName)
    do {
      let text = try ManifestYAML.stream(classes)
      try AtomicFile.write(Array(text.utf8), to: path, mode: 0o644)
      logger.notice("RuntimeClasses written for k3s auto-deploy", metadata: ["path": "\(path)", "classes": "\(classes.map(\.metadata.name))"])
      return .written(path: path, classes: classes.count)
    } catch {
      // Not fatal: the device plugin works without them; the operator can apply them by hand.
      logger.error("cannot write the RuntimeClasses for k3s auto-deploy", metadata: ["path": "\(path)", "error": "\(error)"])
      return nil
    }
  }
}
