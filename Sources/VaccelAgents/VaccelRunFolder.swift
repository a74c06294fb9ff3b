import Glibc
import NodeSupport

/// libvaccel's own run folder, `/run/user/<uid>/vaccel/`: hard-coded in its `create_rundir`
/// (no setting), and created there if missing in a way that races when several agents start at
/// once. The loser exits 20 ("Path /run/user/0/vaccel exists but is not a directory", "Could not
/// create root rundir"): seen when eight agents started together on a node. The daemon makes
/// the folder before any agent starts and again before each start (something may empty
/// `/run/user`), and an agent that still exits 20 is started again at once.
public enum VaccelRunFolder {
  public static var defaultPath: String { "/run/user/\(getuid())/vaccel" }
  /// libvaccel's exit code for "Could not create root rundir".
  public static let raceExitCode: Int32 = 20
  /// Immediate restarts for that exit before the usual back-off applies (a read-only `/run`
  /// fails every time, and must not spin).
  public static let immediateRetries = 3

  public static func prepare(_ path: String) throws(FileSystemError) {
    try Directories.create(path, mode: 0o700)
  }
}
