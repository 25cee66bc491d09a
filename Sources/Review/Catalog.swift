import Builder
import Confinement
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Manifest
import Planner
import ProcessLanguage

/// `derive catalog`: every style of the catalogue applied to a set of sample sources, as a
/// contact sheet (text, JSON, or one self-contained HTML page with the renders beside it).
public struct Catalog: Sendable, Codable, Equatable {
    public var manifest: String
    /// `bucket/key` of each sample, in order.
    public var samples: [String]
    /// Where the samples came from: `catalog.samples`, or the first source of each rule.
    public var samplesFrom: String
    public var styles: [StyleRow]
    /// Total bytes of all renders.
    public var bytes: Int64

    /// A named style, or a rule's own `process:` recipe (one row per matrix combination).
    public struct StyleRow: Sendable, Codable, Equatable {
        /// `thumb`; for a rule's recipe, `rule 'logos'` or `rule 'hero' (w=320)`.
        public var name: String
        public var canonical: String
        public var cells: [Cell]
        /// The rule whose `process:` this is; nil for a named style.
        public var rule: String?
        /// The pipeline rendered (not encoded).
        var pipeline: Pipeline? = nil

        enum CodingKeys: String, CodingKey { case name, canonical, cells, rule }
    }

    /// Rows of one rule's `process:` at most (a matrix may make 1000); the rest are counted.
    public static let maxRowsPerRule = 24
    /// Matrix combinations of rules left out by `maxRowsPerRule`.
    public var rowsLeftOut: Int = 0

    public struct Cell: Sendable, Codable, Equatable {
        public var sample: String
        public var width: Int?
        public var height: Int?
        public var format: String?
        public var bytes: Int64?
        /// Report-relative path of the render (with `--html` only).
        public var image: String?
        /// Why there is no render (a failed render, a source that cannot be read).
        public var note: String?
    }

    /// The samples: `catalog.samples` when given, else the first source (in key order) of each
    /// rule, each once, from the read-only plan.
    public static func samples(_ manifest: Manifest, derivatives: [Derivative]) -> (samples: [String], from: String) {
        if !manifest.catalogSamples.isEmpty { return (manifest.catalogSamples, "catalog.samples") }
        var first: [String: String] = [:]
        for derivative in derivatives where first[derivative.rule].map({ derivative.source < $0 }) ?? true {
            first[derivative.rule] = derivative.source
        }
        var samples: [String] = []
        for rule in manifest.rules { if let source = first[rule.planName], !samples.contains(source) { samples.append(source) } }
        return (samples, "the first source of each rule")
    }

    /// Renders every style on every sample with `renderer` (on worker threads). With `folder`,
    /// writes the renders into `folder/images` and the page `folder/index.html` (never a
    /// bucket; the folder is claimed once); otherwise keeps nothing. `kept` is told of each
    /// user's file met at a render's name (kept; the render went under another name).
    public static func make(_ manifest: Manifest, manifestName: String, samples: [String], from: String,
                            renderer: any DerivativeRenderer, folder: String?, kept: (String) -> Void = { _ in }) throws -> Catalog {
        let report = try folder.map { try ReportFolder.claim($0, manifests: [manifest]) }
        // Named styles by name, then each rule's own `process:` (inline recipes are the
        // catalogue too), in manifest order.
        var styles = manifest.styles.sorted { $0.name < $1.name }
            .map { StyleRow(name: $0.name, canonical: $0.pipeline.canonical, cells: [], pipeline: $0.pipeline) }
        var leftOut = 0
        for rule in manifest.rules {
            guard case .process = rule.recipe, let variants = try? rule.variants(catalogue: manifest.catalogue) else { continue }
            for variant in variants.prefix(maxRowsPerRule) {
                let values = variant.values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
                styles.append(StyleRow(name: "rule '\(rule.planName)'" + (values.isEmpty ? "" : " (\(values))"),
                                       canonical: variant.pipeline.canonical, cells: [], rule: rule.planName, pipeline: variant.pipeline))
            }
            leftOut += max(0, variants.count - maxRowsPerRule)
        }
        var jobs: [(style: Int, sample: Int)] = []
        for s in styles.indices { for n in samples.indices { jobs.append((s, n)) } }
        // Each sample is read once, confined to its bucket, up to the renderer's byte limit (a
        // larger one is refused from its size, unread, as the build does).
        var sources: [Int: Result<(data: Data, bucketPath: String), Error>] = [:]
        for (n, sample) in samples.enumerated() { sources[n] = Result { try read(sample, manifest, maxBytes: renderer.maxSourceBytes) } }
        let work = jobs, loaded = sources, rows = styles
        let results = Locked([Int: Cell]())
        DispatchQueue.concurrentPerform(iterations: work.count) { index in
            let (s, n) = work[index]
            var cell = Cell(sample: samples[n])
            do {
                let source = try loaded[n]!.get()
                let rendered = try renderer.render(source.data, rows[s].pipeline!, bucketPath: source.bucketPath)
                cell.width = rendered.width; cell.height = rendered.height
                cell.format = rendered.format; cell.bytes = Int64(rendered.bytes.count)
                if let report {
                    let name = "images/" + String(format: "%03d-%03d.%@", s + 1, n + 1, rendered.format)
                    do { cell.image = try report.writeRender(rendered.bytes, to: name) } catch { cell.note = "\(error)" }
                }
            } catch { cell.note = "\(error)" }
            results.update { $0[index] = cell }
        }
        let cells = results.value
        var filled = rows
        for (index, job) in jobs.enumerated() { filled[job.style].cells.append(cells[index] ?? Cell(sample: samples[job.sample])) }
        let total = filled.flatMap(\.cells).reduce(Int64(0)) { $0 + ($1.bytes ?? 0) }
        let catalog = Catalog(manifest: manifestName, samples: samples, samplesFrom: from, styles: filled, bytes: total, rowsLeftOut: leftOut)
        try report?.write(Data(catalog.html().utf8), to: "index.html")
        for line in report?.kept ?? [] { kept(line) }
        return catalog
    }

    static func read(_ sample: String, _ manifest: Manifest, maxBytes: Int) throws -> (data: Data, bucketPath: String) {
        let slash = sample.firstIndex(of: "/") ?? sample.endIndex
        let bucketName = String(sample[..<slash])
        guard let bucket = manifest.bucket(named: bucketName), slash < sample.endIndex else {
            throw ReviewRenderer.Failure(description: "\(sample): no bucket '\(bucketName)' in the manifest")
        }
        let key = try ObjectKey(String(sample[sample.index(after: slash)...]))
        return (try ConfinedFolder(path: bucket.path).read(key, maxBytes: maxBytes), bucket.path)
    }

    // MARK: Text

    public func text() -> String {
        // Names, matrix values and messages with control characters escaped, as `derive diff` does.
        let clean = ReviewText.clean
        var out = "derive catalog \(clean(manifest)): \(rowsText) × \(samples.count) sample\(samples.count == 1 ? "" : "s") (\(samplesFrom))\n"
        for row in styles {
            out += clean(row.rule == nil ? "style '\(row.name)'" : row.name) + ": \(clean(row.canonical))\n"
            for cell in row.cells {
                if let width = cell.width, let height = cell.height, let bytes = cell.bytes {
                    out += "  \(clean(cell.sample))  \(width)x\(height) \(clean(cell.format ?? "?"))  \(bytes) bytes\(cell.image.map { "  \(clean($0))" } ?? "")\n"
                } else {
                    out += "  \(clean(cell.sample))  failed: \(clean(cell.note ?? "no render"))\n"
                }
            }
        }
        let cells = styles.flatMap(\.cells), failed = failedRenders
        out += "Total: \(cells.count - failed) renders\(failed > 0 ? ", \(failed) failed" : ""), \(bytes) bytes.\n"
        if rowsLeftOut > 0 { out += "Left out: \(rowsLeftOut) matrix combination\(rowsLeftOut == 1 ? "" : "s") of rules beyond the first \(Self.maxRowsPerRule) of each.\n" }
        return out
    }

    /// Cells with no render (a style that cannot render a sample, a sample that cannot be read).
    public var failedRenders: Int { styles.reduce(0) { $0 + $1.cells.filter { $0.bytes == nil }.count } }

    /// `2 styles and 1 rule recipe`.
    var rowsText: String {
        let named = styles.filter { $0.rule == nil }.count, recipes = styles.count - named
        var text = "\(named) style\(named == 1 ? "" : "s")"
        if recipes > 0 { text += " and \(recipes) rule recipe\(recipes == 1 ? "" : "s")" }
        return text
    }

    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }

    // MARK: HTML

    /// The page `index.html`: self-contained (relative links, inline style, no script).
    public func html() -> String {
        let e = ReviewHTML.escape
        var page = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Style catalogue: \(e(manifest))</title>
        <style>
        body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
        table{border-collapse:collapse}th,td{border:1px solid #ddd;padding:.5em;vertical-align:top;background:#fff}
        th{text-align:left}td img{display:block;max-width:240px;max-height:240px;background:repeating-conic-gradient(#eee 0 25%,#fff 0 50%) 0 0/16px 16px}
        code{font-size:12px;word-break:break-all}.meta{color:#555;font-size:12px}.fail{color:#b00}
        </style></head><body>
        <h1>Style catalogue</h1>
        <p>\(e(manifest)): \(rowsText) × \(samples.count) sample\(samples.count == 1 ? "" : "s") (\(e(samplesFrom))), \(bytes) bytes in all.</p>
        <table><thead><tr><th>Style</th>
        """
        for sample in samples { page += "<th><code>\(e(sample))</code></th>" }
        page += "</tr></thead><tbody>\n"
        for row in styles {
            page += "<tr id=\"style-\(e(row.name))\"><th>\(e(row.name))<br><code>\(e(row.canonical))</code></th>"
            for cell in row.cells {
                page += "<td>"
                if let image = cell.image {
                    page += "<img src=\"\(ReviewHTML.link(image))\" alt=\"\(e(row.name)) of \(e(cell.sample))\">"
                }
                if let width = cell.width, let height = cell.height, let bytes = cell.bytes {
                    page += "<div class=\"meta\">\(width)×\(height) \(e(cell.format ?? "")) · \(bytes) bytes</div>"
                } else {
                    page += "<div class=\"fail\">\(e(cell.note ?? "no render"))</div>"
                }
                page += "</td>"
            }
            page += "</tr>\n"
        }
        page += "</tbody></table>\n</body></html>\n"
        return page
    }
}
