import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Manifest
import Planner

/// Where `derive diff --junit FILE` may write: never inside a bucket or the state folder, and
/// over an existing file only when that file is a JUnit report Derive wrote (a swapped argument,
/// `--junit derive.yaml`, must not replace the change under review).
public enum JUnitFile {
    public struct Failure: Error, CustomStringConvertible { public var description: String }

    /// The first bytes of every report `JUnitReport.xml` makes.
    static let signature = Data("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"derive diff\"".utf8)

    public static func write(_ xml: String, to path: String, manifests: [Manifest]) throws {
        try check(path, manifests: manifests)
        do { _ = try RealDisk().writeAtomically(Data(xml.utf8), to: path) } catch {
            throw Failure(description: "cannot write the JUnit report \(path): \(error)")
        }
    }

    /// Whether `path` may take the report (checked again when writing); with `reportFolder`
    /// (`--html`/`--renders DIR`), never one of that report's own files, refused before anything
    /// is written.
    public static func check(_ path: String, manifests: [Manifest], reportFolder: String? = nil) throws {
        try ReviewRenderer.checkOutsideBuckets(path, manifests: manifests, what: "the JUnit file")
        if let reportFolder {
            let report = ReviewRenderer.resolved(reportFolder), junit = ReviewRenderer.resolved(path)
            let own = [report, report + "/index.html", report + "/" + ReportFolder.recordName, report + "/images"]
            if own.contains(junit) || junit.hasPrefix(report + "/images/") {
                throw Failure(description: "--junit \(path) is one of the report's own files in \(reportFolder) (index.html, \(ReportFolder.recordName), images/); choose another name, for example \(reportFolder)/junit.xml")
            }
        }
        var info = stat()
        if lstat(path, &info) == 0 {
            guard (info.st_mode & S_IFMT) == S_IFREG else {
                throw Failure(description: "--junit \(path) is not a regular file (a folder, link or device); derive writes the JUnit report only to a new file or over a report it wrote: remove it or choose another path")
            }
            let handle = FileHandle(forReadingAtPath: path)
            let head = try? handle?.read(upToCount: signature.count)
            try? handle?.close()
            guard head == signature else {
                throw Failure(description: "--junit \(path) already exists and is not a JUnit report derive wrote; derive does not replace it: choose another path (for example report/junit.xml)")
            }
        }
    }
}
