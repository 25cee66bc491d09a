import Foundation
import Testing
import TestSupport
@testable import Manifest

/// Attack round 24's M1: a manifest of deeply nested flow YAML was refused only after libyaml
/// had built the whole document, in time quadratic in the depth (160 KB: 19 s; 4 MB: hours).
/// The depth is now counted on libyaml's events before any tree is built: the 65th list or
/// mapping inside another is refused where it opens, at once.
@Suite(.ownThreads) struct YAMLDepthBoundTests {
    func load(_ text: String) throws -> YAMLNode? {
        try YAMLLoader.load(Data(text.utf8), file: "deep.yaml")
    }

    /// `depth` flow lists inside each other, or `{a: {a: …}}` mappings.
    static func lists(_ depth: Int) -> String { String(repeating: "[", count: depth) + "x" + String(repeating: "]", count: depth) + "\n" }
    static func mappings(_ depth: Int) -> String { String(repeating: "{a: ", count: depth) + "x" + String(repeating: "}", count: depth) + "\n" }

    func refusal(_ text: String) -> YAMLError? {
        do { _ = try load(text); return nil } catch { return error as? YAMLError }
    }

    @Test func sixtyFourLevelsAreAccepted() throws {
        var list = try #require(try load(Self.lists(64)))
        var levels = 0
        while case .sequence(let items) = list.kind { levels += 1; list = items[0] }
        #expect(levels == 64 && list.scalar == "x")
        var mapping = try #require(try load(Self.mappings(64)))
        levels = 0
        while case .mapping(let pairs) = mapping.kind { levels += 1; mapping = pairs[0].value }
        #expect(levels == 64 && mapping.scalar == "x")
        // Block style counts the same way: 63 mappings and a list.
        let block = (0..<63).map { String(repeating: " ", count: $0) + "k:" }.joined(separator: "\n") + "\n" + String(repeating: " ", count: 63) + "- x\n"
        #expect(try load(block) != nil)
    }

    @Test func theSixtyFifthLevelIsRefusedWhereItOpens() throws {
        let list = try #require(refusal(Self.lists(65)))
        #expect(list.location.file == "deep.yaml" && list.location.line == 1 && list.location.column == 65, "\(list.location)")
        #expect(list.message.contains("nesting deeper than 64 levels") && list.message.contains("lists and mappings"), "\(list.message)")
        let mapping = try #require(refusal(Self.mappings(65)))
        #expect(mapping.location.line == 1 && mapping.location.column == 4 * 64 + 1, "\(mapping.location)")
        #expect(mapping.message.contains("nesting deeper than 64 levels"), "\(mapping.message)")
        // On a later line, in block style.
        let block = "version: 1\n" + (0..<65).map { String(repeating: " ", count: $0) + "k:" }.joined(separator: "\n") + " x\n"
        let deep = try #require(refusal(block))
        #expect(deep.location.line == 66 && deep.location.column == 65, "\(deep.location)")
        // An empty list as the 65th level is as deep.
        #expect(refusal(String(repeating: "[", count: 65) + String(repeating: "]", count: 65))?.location.column == 65)
    }

    /// 4 MB of nesting used to take hours; the generous bound only says it no longer does.
    @Test func aFourMegabyteBombIsRefusedFast() throws {
        let started = Date()
        let size = YAMLBudget().maxBytes / 2 - 8
        for bomb in ["a: " + String(repeating: "[", count: size) + String(repeating: "]", count: size),
                     String(repeating: "{a: ", count: size / 4) + String(repeating: "}", count: size / 4),
                     "a: " + String(repeating: "[", count: 2 * size)] {
            let error = try #require(refusal(bomb))
            #expect(error.message.contains("nesting deeper than 64 levels"), "\(error.message)")
            #expect(error.location.line == 1)
        }
        #expect(Date().timeIntervalSince(started) < 10)
    }
}
