import Foundation
import Imaging
import ProcessLanguage
@testable import RenderWorkers
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Issue #10, ninth attack, finding 1: ImageMagick (BMP) spills its pixel cache to a temporary
/// file that a killed worker never removes (640 MB per stopped render). Each worker gets a
/// private temporary folder that the parent removes once the worker has ended.
final class WorkerTemporaryFolderTests: XCTestCase {
    /// A valid 8-bit RLE BMP (all black) of `width`×`height`.
    static func rleBMP(_ width: Int, _ height: Int) -> Data {
        func le32(_ v: Int) -> [UInt8] { (0..<4).map { UInt8((v >> (8 * $0)) & 0xFF) } }
        func le16(_ v: Int) -> [UInt8] { (0..<2).map { UInt8((v >> (8 * $0)) & 0xFF) } }
        var row: [UInt8] = []
        var left = width
        while left > 0 { let run = min(255, left); row += [UInt8(run), 0]; left -= run }
        row += [0, 0]
        var pixels: [UInt8] = []
        for _ in 0..<height { pixels += row }
        pixels += [0, 1]
        let dib = le32(40) + le32(width) + le32(height) + le16(1) + le16(8) + le32(1) + le32(pixels.count)
            + le32(2835) + le32(2835) + le32(256) + le32(0)
        let offset = 14 + dib.count + 1024
        return Data(Array("BM".utf8) + le32(offset + pixels.count) + le32(0) + le32(offset) + dib
            + [UInt8](repeating: 0, count: 1024) + pixels)
    }

    /// Folders of this process's workers.
    static func ownFolders() -> [String] {
        let base = WorkerTemporaryFolder.base()
        let prefix = "\(WorkerTemporaryFolder.prefix)\(getpid())."
        return ((try? FileManager.default.contentsOfDirectory(atPath: base)) ?? [])
            .filter { $0.hasPrefix(prefix) }.map { base + "/" + $0 }
    }

    /// A BMP render stopped at its deadline mid-decode: ImageMagick's cache file was in the
    /// worker's own folder (not /tmp), and the folder is gone once the worker was killed.
    func testKilledBMPRenderLeavesNoPixelCacheFile() throws {
        let pool = try RenderWorkerPool(size: 1)
        defer { pool.shutdown() }
        let bomb = Self.rleBMP(8000, 8000)
        // Over the estimates by default: raised so that ImageMagick really runs and spills. The
        // full-size blur outlasts the deadline on a quiet machine too (the decode alone took 2.4 s).
        let limits = Limits(renderSeconds: 3, maxWork: 1 << 50, maxMemory: 1 << 40)
        let before = Set(Self.ownFolders())
        let seen = Seen()
        let watching = Thread {
            while !seen.done {
                for folder in Self.ownFolders() where !before.contains(folder) {
                    let files = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
                    seen.add(folder: folder, magick: files.contains { $0.hasPrefix("magick-") })
                }
                usleep(20_000)
            }
        }
        watching.start()
        var code: ProcessError.Code?
        XCTAssertThrowsError(try pool.render(bomb, try Pipeline.parse("image/blur,r_50,s_50/resize,w_200"), limits: limits)) { error in
            code = (error as? ProcessError)?.code
        }
        // On a quiet machine ImageMagick may reach its own disk cap ("cache resources exhausted",
        // now ImageTooLarge)
        // before the deadline: then the worker lives on (its folder too) until the pool ends it.
        XCTAssert(code == .requestTimeout || code == .badRequest || code == .imageTooLarge, "\(String(describing: code))")
        if code != .requestTimeout { pool.shutdown() }
        seen.finish()
        let (folders, spilled) = seen.result
        XCTAssertFalse(folders.isEmpty, "the worker had no folder of its own")
        XCTAssertFalse(spilled.isEmpty, "ImageMagick's pixel cache was not written in the worker's folder")
        // Only the folders the BMP render spilled into are this test's: other tests' pools in this
        // process may start workers meanwhile. The parent removes a folder once it has reaped the
        // killed worker, which may lag the error on a loaded machine: wait for it, boundedly.
        let deadline = Date().addingTimeInterval(10)
        for folder in spilled {
            while FileManager.default.fileExists(atPath: folder) && Date() < deadline { usleep(50_000) }
            XCTAssertFalse(FileManager.default.fileExists(atPath: folder), "\(folder) was left behind")
        }
    }

    /// The environment points every temporary path at the folder and caps ImageMagick.
    func testWorkerEnvironment() throws {
        let folder = try WorkerTemporaryFolder.create()
        defer { folder.remove() }
        let environment = folder.environment(from: ["PATH": "/usr/bin", "TMPDIR": "/somewhere"])
        XCTAssertEqual(environment["TMPDIR"], folder.path)
        XCTAssertEqual(environment["MAGICK_TMPDIR"], folder.path)
        XCTAssertEqual(environment["MAGICK_TEMPORARY_PATH"], folder.path)
        XCTAssertEqual(environment["MAGICK_WIDTH_LIMIT"], "16000")
        XCTAssertEqual(environment["MAGICK_DISK_LIMIT"], "1GiB")
        XCTAssertEqual(environment["PATH"], "/usr/bin")
        var status = stat()
        XCTAssertEqual(lstat(folder.path, &status), 0)
        XCTAssertEqual(status.st_mode & 0o777, 0o700)
    }

    /// Folders of a parent that died (derive killed with SIGKILL) are swept when a pool starts;
    /// those of a running parent are kept.
    func testSweepRemovesFoldersOfDeadParents() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("sweep-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        let ended = Process()
        ended.executableURL = URL(fileURLWithPath: "/bin/true")
        try ended.run()
        ended.waitUntilExit()
        let dead = "\(base)/\(WorkerTemporaryFolder.prefix)\(ended.processIdentifier).42"
        let alive = "\(base)/\(WorkerTemporaryFolder.prefix)\(getpid()).43"
        let other = "\(base)/someone-else.\(ended.processIdentifier).44"
        for folder in [dead, alive, other] {
            try FileManager.default.createDirectory(atPath: folder + "/inner", withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: folder + "/magick-XYZ", contents: Data(count: 10))
        }
        WorkerTemporaryFolder.sweep(base: base)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dead))
        XCTAssertTrue(FileManager.default.fileExists(atPath: alive + "/magick-XYZ"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: other + "/magick-XYZ"))
    }
}

/// What the watching thread saw.
private final class Seen: @unchecked Sendable {
    private let lock = NSLock()
    private var folders: Set<String> = []
    private var spilled: Set<String> = []
    private var finished = false

    var done: Bool { lock.withLock { finished } }
    func finish() { lock.withLock { finished = true } }
    func add(folder: String, magick found: Bool) {
        lock.withLock { folders.insert(folder); if found { spilled.insert(folder) } }
    }
    /// Every new folder seen, and those ImageMagick wrote its pixel cache into.
    var result: (Set<String>, Set<String>) { lock.withLock { (folders, spilled) } }
}

/// Attack 11, F4f: an idle worker whose parent ended (`derive serve` at SIGTERM exits without
/// reaping its idle workers) left its empty folder: the worker's main thread saw the socket
/// close and exited before its watching thread removed the folder. Every exit path of the
/// worker removes it now.
final class WorkerFolderOnParentEndTests: XCTestCase {
    func testAWorkerWhoseParentEndsRemovesItsFolder() throws {
        let path = try WorkerLocation.find()
        var workers: [WorkerProcess] = []
        for _ in 0..<6 { workers.append(try WorkerProcess.launch(path, expectedEngineVersion: nil)) }
        // The parent's end closes as when it dies; it neither kills nor reaps nor removes.
        for worker in workers { close(worker.channel.fd) }
        var left: [String] = []
        for worker in workers {
            var status: Int32 = 0
            while waitpid(worker.pid, &status, 0) < 0, errno == EINTR {}
            if FileManager.default.fileExists(atPath: worker.temporary.path) { left.append(worker.temporary.path) }
            worker.temporary.remove()
        }
        XCTAssertEqual(left, [], "folders left by workers whose parent ended")
    }
}
