import Access
import Foundation
import Manifest
import Testing
import TestSupport
@testable import DeriveServer

/// Session 26's serve leftover: a bucket added in the same manifest edit as a swap of its folder.
/// The reload fingerprinted the new bucket's folder only after loading, so a folder swapped in
/// between (after the loader's overlap and control-file checks saw the old one) was taken for
/// the checked folder and served until the next change. Now every folder serve serves was at
/// its path when a load checked it.
@Suite(.ownThreads) struct ServedManifestAddedBucketTests {
    /// Counts the loads and, at each, notes the identity of `drafts`' folder the loader saw;
    /// `afterFirstLoad` runs once, right after the first reload's load (the swap).
    final class Loads: @unchecked Sendable {
        private let lock = NSLock()
        private var seen: [[Int64]] = []
        private var swap: (() -> Void)?
        init(afterFirstLoad: @escaping () -> Void) { swap = afterFirstLoad }

        func loaded(_ folder: String) {
            lock.lock()
            var info = stat()
            if stat(folder, &info) == 0 { seen.append([Int64(info.st_dev), Int64(info.st_ino)]) }
            let action = swap
            swap = nil
            lock.unlock()
            action?()
        }
        var identities: [[Int64]] { lock.lock(); defer { lock.unlock() }; return seen }
    }

    static func manifest(drafts: Bool) -> String {
        """
        version: 1
        buckets:
          site: {path: site, acl: public-read}
        \(drafts ? "  drafts: {path: drafts, acl: private}\n" : "")
        """
    }

    @Test func aBucketAddedWithItsFolderSwappedIsServedOnlyFromAFolderALoadChecked() throws {
        let root = (try ScratchFolder.make("derive-added"))
        defer { try? FileManager.default.removeItem(at: root) }
        for folder in ["site", "drafts"] {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(folder), withIntermediateDirectories: true)
        }
        let manifestPath = root.appendingPathComponent("derive.yaml").path
        try Data(Self.manifest(drafts: false).utf8).write(to: URL(fileURLWithPath: manifestPath))
        @Sendable func configuration() throws -> ServedConfiguration {
            let result = ManifestLoader().load(manifestPath)
            guard let manifest = result.manifest, !result.diagnostics.hasErrors else {
                throw ServedManifest.Unavailable("\(result.diagnostics.sorted)")
            }
            return ServedConfiguration(manifest: manifest, verifier: Verifier(keys: [:], region: "local"), recorded: NoRecordedOutputs())
        }
        let drafts = root.appendingPathComponent("drafts").path
        let loads = Loads {
            // The folder swapped for another just after the load that added the bucket checked it.
            _ = rename(drafts, drafts + ".old")
            mkdir(drafts, 0o755)
        }
        let initial = try configuration()
        let served = ServedManifest(initial: initial, rootPath: manifestPath, cacheFolder: root.appendingPathComponent("cache").path,
                                    digestInterval: 0) {
            let loaded = try configuration()
            if loaded.manifest.bucket(named: "drafts") != nil { loads.loaded(drafts) }
            return loaded
        }
        try Data(Self.manifest(drafts: true).utf8).write(to: URL(fileURLWithPath: manifestPath))
        guard case .success(let now) = served.current() else { Issue.record("the edited manifest does not load"); return }
        #expect(now.manifest.bucket(named: "drafts") != nil)
        let folder = URL(fileURLWithPath: drafts).standardizedFileURL.path
        let validated = served.validatedFolder(folder)
        let checked = loads.identities
        // Either no folder is taken for checked (503 until a load sees it), or the one taken is one a load saw.
        if let validated {
            #expect(checked.contains([Int64(bitPattern: validated.device), Int64(bitPattern: validated.inode)]),
                    "serve takes drafts' folder \(validated.device):\(validated.inode) for checked; the loads saw \(checked)")
        }
    }
}
