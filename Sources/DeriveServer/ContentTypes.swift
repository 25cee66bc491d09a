import Confinement
import Foundation

/// The Content-Type of an object uploaded without one, from its key's extension (as OSS and its
/// SDKs decide it); `application/octet-stream` when the extension says nothing.
enum ContentTypes {
    static let byExtension: [String: String] = [
        "jpg": "image/jpeg", "jpeg": "image/jpeg", "jpe": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp",
        "avif": "image/avif", "heic": "image/heic", "heif": "image/heif", "bmp": "image/bmp", "tif": "image/tiff", "tiff": "image/tiff",
        "ico": "image/x-icon", "svg": "image/svg+xml", "jxl": "image/jxl",
        "html": "text/html", "htm": "text/html", "css": "text/css", "js": "application/javascript", "mjs": "application/javascript",
        "json": "application/json", "xml": "application/xml", "txt": "text/plain", "md": "text/markdown", "csv": "text/csv",
        "pdf": "application/pdf", "zip": "application/zip", "gz": "application/gzip", "tar": "application/x-tar",
        "wasm": "application/wasm", "woff": "font/woff", "woff2": "font/woff2", "ttf": "font/ttf", "otf": "font/otf",
        "mp4": "video/mp4", "webm": "video/webm", "mov": "video/quicktime", "mp3": "audio/mpeg", "wav": "audio/wav", "ogg": "audio/ogg",
        // What static sites add (#13): source maps, web app manifests, feeds, captions.
        "map": "application/json", "webmanifest": "application/manifest+json", "apng": "image/apng", "xhtml": "application/xhtml+xml",
        "rss": "application/rss+xml", "atom": "application/atom+xml", "vtt": "text/vtt", "yaml": "application/yaml", "yml": "application/yaml",
        "jsonld": "application/ld+json", "eot": "application/vnd.ms-fontobject", "avifs": "image/avif-sequence",
        // Media, calendars, data and subtitles (attack 36a's L4), as OSS's SDKs give them (their
        // table is the system's MIME types: Python's `mimetypes`, Go's `mime`); `jsonl` has no
        // entry there and takes JSON Lines' own type.
        "svgz": "image/svg+xml", "jfif": "image/jpeg", "m4v": "video/mp4", "ogv": "video/ogg", "m4a": "audio/mp4", "aac": "audio/aac",
        "opus": "audio/ogg", "flac": "audio/flac", "ics": "text/calendar", "jsonl": "application/jsonl", "srt": "text/plain",
    ]

    /// The `Content-Encoding` of a file no upload described: `gzip` for a `.svgz` whose bytes are
    /// gzip (a browser shows a compressed SVG only when told so); nil otherwise. An uploaded
    /// object keeps the encoding its upload gave, as on OSS.
    static func encodingForFile(_ key: ObjectKey, head: Data) -> String? {
        let name = String(decoding: key.segments.last ?? [], as: UTF8.self)
        guard name.lowercased().hasSuffix(".svgz"), head.count >= 2, head[head.startIndex] == 0x1F, head[head.startIndex + 1] == 0x8B else { return nil }
        return "gzip"
    }

    /// The type of a file no upload described (a build's output, a site's page, a file put in
    /// the bucket's folder): as `forKey`, a `text/` type with `; charset=utf-8`, or a browser
    /// reads a page without `<meta charset>` as windows-1252 (attack 15's L7). An uploaded
    /// object keeps the type OSS gives it (`forKey`).
    static func forFile(_ key: ObjectKey) -> String? {
        forKey(key).map { $0.hasPrefix("text/") ? $0 + "; charset=utf-8" : $0 }
    }

    /// The type for `key` by its extension (case-insensitive), nil when unknown.
    static func forKey(_ key: ObjectKey) -> String? {
        let name = String(decoding: key.segments.last ?? [], as: UTF8.self)
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return nil }
        return byExtension[name[name.index(after: dot)...].lowercased()]
    }
}
