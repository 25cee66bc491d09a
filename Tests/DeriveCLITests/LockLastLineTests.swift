import Foundation
import Testing
import TestSupport

/// Attack 15 (static) M10: a lock whose last line lost only its newline (an editor, a hand-resolved
/// merge) was dropped whole in a fresh clone: every output of Derive's was called foreign and the
/// build rewrote the lock without them. A last line that parses is a whole line.
@Suite(.ownThreads, .serialized) struct LockLastLineTests {
    typealias Project = BuildSafetyAttackTests.Project
    func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

    @Test func aLockWithoutItsFinalNewlineIsStillTheLock() throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let lock = try Data(contentsOf: project.url("derive.lock"))
        try #require(lock.last == UInt8(ascii: "\n"))
        try lock.dropLast().write(to: project.url("derive.lock"))
        try FileManager.default.removeItem(at: project.url(".derive"))   // a fresh clone
        // check names the lock as one the build rewrites (its bytes lack the newline), not as invalid.
        let check = try project.run(["check"])
        #expect(!(text(check.stdout) + check.stderr).contains("not a valid lock"), "\(text(check.stdout)) \(check.stderr)")
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(text(build.stdout)) \(build.stderr)")
        #expect(!(text(build.stdout) + build.stderr).contains("not written by Derive"), "\(text(build.stdout)) \(build.stderr)")
        #expect(try Data(contentsOf: project.url("derive.lock")) == lock, "the lock lost its lines")
        let after = try project.run(["check"])
        #expect(after.status == 0, "\(text(after.stdout)) \(after.stderr)")
    }

    /// Attack 16 V5: a lock whose lines git wrote with CRLF (`core.autocrlf`) was dropped whole
    /// (`"\r\n"` is one Character, so splitting on `"\n"` found one line). Lines split on the byte.
    @Test func aLockWithCRLFLineEndingsIsStillTheLock() throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let lock = try Data(contentsOf: project.url("derive.lock"))
        var crlf = Data()
        for byte in lock { if byte == UInt8(ascii: "\n") { crlf.append(UInt8(ascii: "\r")) }; crlf.append(byte) }
        try crlf.write(to: project.url("derive.lock"))
        try FileManager.default.removeItem(at: project.url(".derive"))   // a fresh clone
        let build = try project.run(["build"])
        #expect(build.status == 0, "\(text(build.stdout)) \(build.stderr)")
        #expect(!(text(build.stdout) + build.stderr).contains("not written by Derive"), "\(text(build.stdout)) \(build.stderr)")
        #expect(try Data(contentsOf: project.url("derive.lock")) == lock, "the lock lost its lines")
    }

    /// A lock cut inside a line is still not trusted (nothing of it is adopted).
    @Test func aLockCutInsideALineIsNotTrusted() throws {
        let project = try Project()
        defer { project.remove() }
        #expect(try project.run(["build", "-q"]).status == 0)
        let lock = try Data(contentsOf: project.url("derive.lock"))
        try lock.dropLast(5).write(to: project.url("derive.lock"))
        try FileManager.default.removeItem(at: project.url(".derive"))
        let check = try project.run(["check"])
        #expect(check.status != 0, "\(text(check.stdout)) \(check.stderr)")
    }
}
