/// Conditional requests (RFC 9110 §13.2.2, the order OSS follows): `If-Match`, else
/// `If-Unmodified-Since` (412 when false); then `If-None-Match`, else `If-Modified-Since` (304
/// when false). An invalid date is ignored, as OSS ignores it. `If-Match` compares strongly (a
/// weak `W/` tag never matches, RFC 9110 §13.1.1), `If-None-Match` weakly (§13.1.2).
enum Conditions {
    enum Outcome: Equatable { case proceed, notModified, preconditionFailed }

    static func evaluate(_ headers: [String: String], etag: String, lastModified: Int) -> Outcome {
        if let ifMatch = headers["if-match"] {
            if !matches(ifMatch, etag, strong: true) { return .preconditionFailed }
        } else if let since = headers["if-unmodified-since"].flatMap(HTTPDate.parse), lastModified > since {
            return .preconditionFailed
        }
        if let ifNoneMatch = headers["if-none-match"] {
            if matches(ifNoneMatch, etag) { return .notModified }
        } else if let since = headers["if-modified-since"].flatMap(HTTPDate.parse), lastModified <= since {
            return .notModified
        }
        return .proceed
    }

    /// Whether a `Range` is served (RFC 9110 §13.1.5): always without `If-Range`; with one, only
    /// when its validator is the object's entity tag by strong comparison (a weak `W/` tag never
    /// matches; the hex digits' case is not significant, as above). A date never matches: the
    /// Last-Modified has whole seconds, a rebuild can replace an object twice within one, and
    /// nothing here knows it did not (RFC 9110 §8.8.2.2: such a date is weak). Otherwise the whole
    /// object is sent, so a download resumed after the object changed never splices new bytes onto old ones.
    static func rangeApplies(_ headers: [String: String], etag: String, lastModified: Int) -> Bool {
        guard let ifRange = headers["if-range"]?.trimmingCharacters(in: .whitespaces) else { return true }
        if ifRange.hasPrefix("\"") {
            return ifRange.count >= 2 && ifRange.hasSuffix("\"") && bare(ifRange).caseInsensitiveCompare(bare(etag)) == .orderedSame
        }
        return false
    }

    /// Whether a list of entity tags names `etag` (or is `*`). Quotes are not significant, nor is
    /// the case of the hex digits (OSS writes them upper-case, some clients lower-case them); a
    /// weak `W/` prefix is not either, unless `strong`: then a weak tag never matches.
    static func matches(_ list: String, _ etag: String, strong: Bool = false) -> Bool {
        let wanted = bare(etag)
        return list.split(separator: ",").contains { candidate in
            let tag = candidate.trimmingCharacters(in: .whitespaces)
            if strong, tag.hasPrefix("W/") { return false }
            return tag == "*" || bare(tag).caseInsensitiveCompare(wanted) == .orderedSame
        }
    }

    private static func bare(_ tag: String) -> String {
        var tag = Substring(tag)
        if tag.hasPrefix("W/") { tag = tag.dropFirst(2) }
        if tag.hasPrefix("\""), tag.hasSuffix("\""), tag.count >= 2 { tag = tag.dropFirst().dropLast() }
        return String(tag)
    }
}

/// A single byte range (`Range: bytes=a-b`, `bytes=a-`, `bytes=-n`) as OSS answers it. A header
/// it cannot parse, or several ranges, is ignored (the whole object, 200). A range outside the
/// object (a first or last byte at or past its end, a suffix longer than it) is ignored too, as
/// OSS does by default; with `x-oss-range-behavior: standard` (what the V2 SDK's downloader
/// sends) it is RFC 9110's: an end past the object is clamped, a start at or past it (or a zero
/// suffix, `bytes=-0`, which selects no byte) is 416 InvalidRange. A number with more digits
/// than an integer holds is past any object, and is taken as such.
enum ByteRange: Equatable {
    case whole
    case part(start: Int, length: Int)
    case unsatisfiable

    /// Whether the request asked for RFC 9110's handling of ranges outside the object.
    static func isStandard(_ header: String?) -> Bool {
        header?.trimmingCharacters(in: .whitespaces).lowercased() == "standard"
    }

    static func parse(_ header: String?, size: Int, standard: Bool = false) -> ByteRange {
        guard let header else { return .whole }
        let text = header.trimmingCharacters(in: .whitespaces)
        guard text.lowercased().hasPrefix("bytes=") else { return .whole }
        let spec = text.dropFirst(6).trimmingCharacters(in: .whitespaces)
        guard !spec.contains(","), let dash = spec.firstIndex(of: "-") else { return .whole }
        let first = spec[..<dash].trimmingCharacters(in: .whitespaces), last = spec[spec.index(after: dash)...].trimmingCharacters(in: .whitespaces)
        // Too many digits for an integer: past any object (the largest integer stands for it).
        func number(_ text: String) -> Int? {
            guard !text.isEmpty, text.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
            return Int(text) ?? Int.max
        }
        // Whether the first number is at most the second, by their digits (two that do not fit
        // an integer are still ordered).
        func notAfter(_ a: String, _ b: String) -> Bool {
            let x = a.drop { $0 == "0" }, y = b.drop { $0 == "0" }
            return x.count != y.count ? x.count < y.count : x <= y
        }
        if first.isEmpty {
            guard let suffix = number(last) else { return .whole }
            guard suffix > 0 else { return standard ? .unsatisfiable : .whole }
            guard standard || suffix <= size else { return .whole }
            guard size > 0 else { return .unsatisfiable }
            let length = min(suffix, size)
            return .part(start: size - length, length: length)
        }
        guard let start = number(first) else { return .whole }
        let end: Int
        if last.isEmpty {
            end = size - 1
        } else {
            guard let value = number(last), notAfter(first, last) else { return .whole }
            guard standard || value < size else { return .whole }
            end = min(value, size - 1)
        }
        guard start < size else { return standard ? .unsatisfiable : .whole }
        return .part(start: start, length: end - start + 1)
    }
}

import Foundation
