import Foundation
import Testing
import TestSupport
@testable import Planner

/// `OptionPath.resolve`: the path the kernel reaches, and a `..` taken only where text and
/// kernel agree (attack 13b, findings 1 and 2).
@Suite(.ownThreads)
struct OptionPathTests {
    func folder() throws -> String {
        let base = (try ScratchFolder.make("optionpath")).path
        try FileManager.default.createDirectory(atPath: base + "/elsewhere/deep", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: base + "/real", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: base + "/d", withDestinationPath: "elsewhere/deep")
        try FileManager.default.createSymbolicLink(atPath: base + "/same", withDestinationPath: "real")
        try FileManager.default.createSymbolicLink(atPath: base + "/nowhere", withDestinationPath: "missing/folder")
        return OptionPath.realPath(base) ?? base
    }

    @Test func resolvesLinksOnTheWayAndKeepsTheLastName() throws {
        let base = try folder()
        defer { try? FileManager.default.removeItem(atPath: base) }
        #expect(try OptionPath.resolve(base + "/d/junit.xml", option: "--junit") == base + "/elsewhere/deep/junit.xml")
        #expect(try OptionPath.resolve(base + "/real/../x/./y", option: "--html") == base + "/x/y")
        // A link to a sibling folder: `same/..` means the same folder read either way.
        #expect(try OptionPath.resolve(base + "/same/../z", option: "--html") == base + "/z")
        // The last name is not followed: a link there is the caller's to refuse.
        #expect(try OptionPath.resolve(base + "/d", option: "--html") == base + "/d")
        #expect(try OptionPath.resolve("/", option: "--html") == "/")
        #expect(try OptionPath.resolve("/..", option: "--html") == "/")
    }

    @Test func refusesADotDotThatReadsTwoWays() throws {
        let base = try folder()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let link = #expect(throws: OptionPath.Failure.self) { try OptionPath.resolve(base + "/d/../derive.yaml", option: "--junit") }
        #expect(link?.description.contains(base + "/elsewhere/derive.yaml") == true && link?.description.contains(base + "/derive.yaml") == true)
        let missing = #expect(throws: OptionPath.Failure.self) { try OptionPath.resolve(base + "/new/../x", option: "--html") }
        #expect(missing?.description.contains("does not exist yet") == true, "\(String(describing: missing))")
        let dangling = #expect(throws: OptionPath.Failure.self) { try OptionPath.resolve(base + "/nowhere/x", option: "-o") }
        #expect(dangling?.description.contains("leads nowhere") == true, "\(String(describing: dangling))")
    }
}
