import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import ProcessLanguage
import Testing
import TestSupport
@testable import DeriveServer

/// Attack 43's M-a: a key holding a C1 control (U+0080–U+009F; a source named `p\u{9B}[31m.jpg`
/// gives one) was served, but a listing without `encoding-type=url` showed it with U+FFFD, so a
/// client that listed and then fetched got 404. XML 1.0 allows U+0080–U+009F: the listing sends
/// the key as it is, and only characters XML forbids are replaced.
@Suite(.ownThreads) struct ListingC1KeyRound44Tests {
    @Test func aListedKeyWithAC1ControlIsTheKeyAGetServes() throws {
        let f = try ServiceFixture()
        let key = "out/p\u{9B}[31m\u{85}.txt"
        try f.write("site/" + key, "hello")
        let listing = f.get("/site/?list-type=2&prefix=out%2F")
        #expect(listing.status == 200, "\(listing.text)")
        let listed = listing.values("Key")
        #expect(listed == [key], "\(listed.map(\.debugDescription))")
        // The body is XML a parser takes, key included.
        let parser = XMLParser(data: listing.body)
        #expect(parser.parse(), "\(String(describing: parser.parserError))")
        for name in listed {
            let object = f.send("GET", "site", name, signed: false)
            #expect(object.status == 200 && object.text == "hello", "\(object.status) \(object.text)")
        }
        let encoded = f.get("/site/?list-type=2&prefix=out%2F&encoding-type=url")
        #expect(encoded.values("Key") == ["out/p%C2%9B%5B31m%C2%85.txt"], "\(encoded.text)")
    }

    @Test func onlyCharactersXMLForbidsAreReplaced() {
        #expect(XMLText.escaped("a\u{80}\u{9B}\u{9F}\u{7F}b") == "a\u{80}\u{9B}\u{9F}\u{7F}b")
        #expect(XMLText.escaped("a\u{0}\u{1B}\u{FFFE}\u{FFFF}b\t\n\r") == "a\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}b\t\n\r")
    }
}
