import Foundation
import TestSupport

/// The one-source project the round-56 suites build in `folder`: `src/a.jpg` (the landscape
/// sample) and `manifest` as `name` (nil: only the source).
func makeSampleProject(_ folder: URL, manifest: String?, named name: String = "derive.yaml") throws {
    let fm = FileManager.default
    try fm.createDirectory(at: folder.appendingPathComponent("src"), withIntermediateDirectories: true)
    try fm.copyItem(at: CLI.samples.appendingPathComponent("landscape.jpg"), to: folder.appendingPathComponent("src/a.jpg"))
    if let manifest { try Data(manifest.utf8).write(to: folder.appendingPathComponent(name)) }
}

/// The inode of the file at `file`, nil when nothing is there: whether a command replaced it.
func fileInode(_ file: URL) -> UInt64? {
    (try? FileManager.default.attributesOfItem(atPath: file.path))?[.systemFileNumber] as? UInt64
}

/// `cp -a from to`: a backup as users make one (a new inode for every file and folder, times kept).
func copyTree(_ from: URL, to: URL) throws {
    let copy = Process()
    copy.executableURL = URL(fileURLWithPath: "/bin/cp")
    copy.arguments = ["-a", from.path, to.path]
    try copy.run()
    copy.waitUntilExit()
}
