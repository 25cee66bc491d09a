import Builder
import Foundation
import GRDB
import Planner
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The eighteenth round on build safety (issue 9, attack 18's S1 and S3), end to end through the binary.
@Suite(.ownThreads, .serialized) struct BuildSafetyRound18Tests {
    typealias Project = BuildSafetyAttackTests.Project
    func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

    func statePath(_ project: Project) -> String { RealFolder.of(project.url(".derive/derive").path) + "/state.sqlite" }
    func state(_ project: Project) throws -> DatabaseQueue { try DatabaseQueue(path: statePath(project), configuration: .patientTest) }

    /// The user's file of secrets for the project's state (under the test run's XDG_STATE_HOME).
    func keeperText(_ project: Project) throws -> String {
        try String(contentsOfFile: keeper(project), encoding: .utf8)
    }

    /// That file's path (`StateBinding.file` as derive computes it with the test run's
    /// XDG_STATE_HOME, which is not this process's when planner tests set theirs).
    func keeper(_ project: Project) -> String {
        CLI.userStateHome.path + "/derive/states/" + ContentDigests.digest(Data(statePath(project).utf8))
    }

    /// Seals every record of the project's state with the user's secret, as Derive would have
    /// written them: for tests whose hand-made rows stand for an older Derive's.
    static func sealAsTheUser(_ project: Project) throws {
        let test = BuildSafetyRound18Tests()
        let line = try test.keeperText(project).split(separator: "\n").first.map(String.init) ?? ""
        let hex = Array(line.dropFirst("secret ".count).utf8)
        var secret = Data()
        var index = 0
        while index + 1 < hex.count {
            secret.append(UInt8(String(decoding: hex[index...index + 1], as: UTF8.self), radix: 16) ?? 0)
            index += 2
        }
        #expect(line.hasPrefix("secret ") && secret.count == 32, "\(line)")
        try StateSeals.sealEveryRecord(ofStateAt: test.statePath(project), secret: secret)
    }

    /// Adds an output record of `out/README.md` (a user's file in the bucket's folder now) with its
    /// digest and size and no device and inode: a "0.13 legacy record", as attack 18's S1 forged it.
    func forgeReadmeRow(_ project: Project) throws -> Data {
        let notes = Data("my unique notes, committed in the repo\n".utf8)
        try notes.write(to: project.url("out/README.md"))
        try state(project).write { db in
            try db.execute(sql: """
                INSERT INTO outputs (path, rule, source, style, matrix, engine, pipeline, sourceDigest, dependencies, encoder, actionKey,
                                     acl, outputDigest, size, width, height, format, builtAt, folder)
                SELECT 'out/README.md', rule, source, style, matrix, engine, pipeline, sourceDigest, dependencies, encoder, actionKey,
                       acl, ?, ?, width, height, format, builtAt, folder FROM outputs LIMIT 1
                """, arguments: [ContentDigests.digest(notes), notes.count])
        }
        return notes
    }

    // MARK: S1: the state holds seals, never the secret

    /// Attack 18's S1 (`legacy.sh`, the step `leak.sh` uses): one forged output row without a
    /// device and inode, naming a user's file in the bucket's folder with its digest. Before the
    /// fix, `plan` listed it for deletion and build deleted it.
    @Test func aForgedLegacyRowDeletesNothing() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let notes = try forgeReadmeRow(project)
        let plan = try project.run(["plan"])
        #expect(!text(plan.stdout).contains("README.md  delete"), "plan deletes on a forged row's word: \(text(plan.stdout))")
        let build = try project.run(["build"])
        let built = text(build.stdout) + build.stderr
        #expect((try? Data(contentsOf: project.url("out/README.md"))) == notes, "out/README.md was deleted on a forged row's word: \(built)")
        #expect(built.contains("out/README.md") && built.contains("seal"), "the forged record is not named: \(built)")
        // Reported once: the build drops the record.
        let again = try project.run(["build"])
        #expect(!(text(again.stdout) + again.stderr).contains("README"), "\(text(again.stdout)) \(again.stderr)")
        #expect(project.exists("out/README.md"))
        // Clean leaves it too.
        _ = try forgeReadmeRow(project)
        let clean = try project.run(["clean"])
        #expect((try? Data(contentsOf: project.url("out/README.md"))) == notes, "clean deleted out/README.md: \(text(clean.stdout)) \(clean.stderr)")
    }

    /// A sealed row whose fields are changed (its digest, its path) no longer verifies: a forged
    /// copy of Derive's own row pointed at the user's file is ignored.
    @Test func anEditedSealedRowIsNotTrusted() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let notes = Data("mine\n".utf8)
        try notes.write(to: project.url("out/notes.jpg"))
        try state(project).write { db in
            try db.execute(sql: "UPDATE outputs SET path = 'out/notes.jpg', outputDigest = ?, size = ? WHERE path = 'out/cmyk.jpg'",
                           arguments: [ContentDigests.digest(notes), notes.count])
            try db.execute(sql: "DELETE FROM outputFiles WHERE path = 'out/cmyk.jpg'")
        }
        let build = try project.run(["build"])
        let built = text(build.stdout) + build.stderr
        #expect((try? Data(contentsOf: project.url("out/notes.jpg"))) == notes, "\(built)")
    }

    /// The state holds no secret: nothing in `state.sqlite` is the secret the user keeps, and the
    /// state files are private (`.derive/` 0700, `state.sqlite` 0600). Before the fix the token
    /// was in the `binding` table of a 0644 file in 0755 folders.
    @Test func theStateHoldsNoSecretAndIsPrivate() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let kept = try keeperText(project)
        let secret = try #require(kept.split(separator: "\n").first?.split(separator: " ").last.map(String.init))
        #expect(secret.count == 64, "\(kept)")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: statePath(project)))
        #expect(bytes.range(of: Data(secret.utf8)) == nil, "the state holds the user's secret in clear")
        func mode(_ path: String) -> mode_t { var info = stat(); _ = lstat(path, &info); return info.st_mode & 0o777 }
        #expect(mode(project.url(".derive").path) == 0o700, "\(String(mode(project.url(".derive").path), radix: 8))")
        #expect(mode(statePath(project)) == 0o600, "\(String(mode(statePath(project)), radix: 8))")
        #expect(mode(keeper(project)) == 0o600)
    }

    /// Upgrade: a state bound by build-17's bearer token (in the state and the user's file) is
    /// re-sealed once with a new secret (the old token may have leaked), its rows from before
    /// device and inode were kept sealed then; a legacy row added afterwards is never trusted.
    @Test func aBearerTokenStateIsResealedOnceWithANewSecret() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        // As build-17 left it: the token in the state and in the user's file, no seals; and a row
        // from before device and inode were kept (cmyk's).
        let token = String(repeating: "ab", count: 32)
        try state(project).write { db in
            try db.execute(sql: "DELETE FROM binding")
            try db.execute(sql: "INSERT INTO binding (token) VALUES (?)", arguments: [token])
            for table in ["outputs", "outputFiles", "controlFiles", "bucketFolders", "createdFolders", "pendingWrites"] where try db.columns(in: table).contains(where: { $0.name == "seal" }) {
                try db.execute(sql: "UPDATE \(table) SET seal = NULL")
            }
            try db.execute(sql: "DELETE FROM outputFiles WHERE path = 'out/cmyk.jpg'")
        }
        let file = keeper(project)
        try Data("token \(token)\nstate \(statePath(project))\n".utf8).write(to: URL(fileURLWithPath: file))
        let build = try project.run(["build"])
        let built = text(build.stdout) + build.stderr
        #expect(build.status == 0 && !built.contains("moved it to"), "the user's own build-17 state is not trusted: \(built)")
        #expect(!(try keeperText(project)).contains(token), "the bearer token is still the secret")
        let bound = try state(project).read { db in try String.fetchAll(db, sql: "SELECT token FROM binding") }
        #expect(!bound.contains(token), "\(bound)")
        // Its legacy row was sealed at the upgrade: the output is still Derive's.
        try FileManager.default.removeItem(at: project.url("src/cmyk.jpg"))
        let drop = try project.run(["build"])
        #expect(!project.exists("out/cmyk.jpg"), "the upgraded legacy record is not trusted: \(text(drop.stdout)) \(drop.stderr)")
        // A legacy row that appears later is not.
        let notes = try forgeReadmeRow(project)
        let later = try project.run(["build"])
        #expect((try? Data(contentsOf: project.url("out/README.md"))) == notes, "\(text(later.stdout)) \(later.stderr)")
    }

    // MARK: S3: a file re-created at an output's path is the user's, even with the inode number back

    /// Attack 18's S3 (`fino.sh`): the user deletes Derive's output and re-creates it with the
    /// same bytes; ext4 hands the inode number straight back. Before the fix the build deleted it.
    @Test func aFileReCreatedWithTheSameInodeNumberIsKept() throws {
        let project = try Project(index: false)
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let path = project.url("out/cmyk.jpg").path
        // Read and closed (not mapped: a mapped file's inode stays in use after the unlink).
        let handle = try #require(FileHandle(forReadingAtPath: path))
        let bytes = try #require(try handle.readToEnd())
        try handle.close()
        var before = stat(), after = stat()
        _ = lstat(path, &before)
        unlink(path)
        // As `cp` does (open, write, close: no temporary name). ext4 gives the lowest free inode
        // number of the group: files that take a lower one are kept aside (and removed after)
        // until the freed number comes back, as it did in attack 18's `fino.sh`.
        var aside: [String] = []
        defer { for file in aside { unlink(file) } }
        for attempt in 0..<400 {
            let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
            #expect(descriptor >= 0)
            _ = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            close(descriptor)
            _ = lstat(path, &after)
            // The last try stays in place: where the file system never hands the number back
            // (CI's did not in 400 tries), the copy is still the user's re-created file.
            if after.st_ino == before.st_ino || attempt == 399 { break }
            let filler = project.url("filler-\(attempt)").path
            rename(path, filler)
            aside.append(filler)
        }
        if before.st_ino != after.st_ino { print("note: the inode number was not reused here (\(before.st_ino) → \(after.st_ino))") }
        try FileManager.default.removeItem(at: project.url("src/cmyk.jpg"))
        let build = try project.run(["build"])
        let built = text(build.stdout) + build.stderr
        #expect(FileManager.default.fileExists(atPath: path), "the user's re-created copy was deleted: \(built)")
        #expect(built.contains("is not the file Derive wrote there"), "\(built)")
        // Derive's own output (not re-created) still goes.
        try FileManager.default.removeItem(at: project.url("src/landscape.jpg"))
        #expect(try project.run(["build", "-q"]).status == 0)
        #expect(!project.exists("out/landscape.jpg"))
    }
}
