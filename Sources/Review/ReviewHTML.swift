import Builder
import Foundation
import Manifest
#if canImport(Glibc)
import Glibc
#endif

/// The review as one self-contained page (`index.html` beside `images/`): no network, relative
/// links only, styles and script inline. Grouped by rule and style, worst first.
public enum ReviewHTML {
    /// `folder/index.html`, under the report folder's ownership rule (`ReportFolder`).
    /// `totalFailures`: the total's and the rules' `max_total_bytes` failures, said in the summary.
    public static func write(_ review: Review, folder: String, manifests: [Manifest], totalFailures: [String] = []) throws {
        try ReportFolder.claim(folder, manifests: manifests).write(Data(page(review, totalFailures: totalFailures).utf8), to: "index.html")
    }

    /// HTML escaping: the index's `<picture>` markup and this page escape alike.
    public static func escape(_ text: String) -> String { Picture.escape(text) }

    /// A relative path the report wrote itself (`images/0001-old.jpg`), percent-encoded for an attribute.
    static func link(_ path: String) -> String {
        escape(path.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: ":"))) ?? path)
    }

    /// `action,param` tokens of a canonical pipeline, with the action before each parameter.
    static func tokens(_ canonical: String) -> [(action: String, text: String)] {
        var result: [(String, String)] = []
        let body = canonical.hasPrefix("image/") ? String(canonical.dropFirst(6)) : canonical
        for action in body.split(separator: "/") {
            let parts = action.split(separator: ",").map(String.init)
            guard let name = parts.first else { continue }
            result.append((name, name))
            for parameter in parts.dropFirst() { result.append((name, parameter)) }
        }
        return result
    }

    /// The canonical string with the tokens the other side lacks marked.
    static func highlighted(_ canonical: String, against other: String?) -> String {
        guard let other else { return "<code>\(escape(canonical))</code>" }
        let theirs = Set(tokens(other).map { $0.action + "\u{0}" + $0.text })
        var html = "<code>image"
        var lastAction: String?
        var first = true
        for (action, text) in tokens(canonical) {
            let isAction = action == text && (lastAction != action || first)
            html += isAction ? "/" : ","
            if isAction { lastAction = action; first = false }
            let changed = !theirs.contains(action + "\u{0}" + text)
            html += changed ? "<mark>\(escape(text))</mark>" : escape(text)
        }
        return html + "</code>"
    }

    static func bytes(_ value: Int64?) -> String { value.map { "\($0) bytes" } ?? "—" }

    /// A titled table of changed buckets or rules: kind, name, and each change as code; empty
    /// when nothing changed.
    static func changeTable(_ title: String, _ rows: [(kind: String, name: String, changes: [String])]) -> String {
        guard !rows.isEmpty else { return "" }
        var html = "<h3>\(title)</h3><table>\n"
        for row in rows {
            html += "<tr><td><span class=\"kind\">\(row.kind)</span></td><td>\(escape(row.name))</td><td>"
            html += row.changes.map { "<code>\(escape($0))</code>" }.joined(separator: "<br>") + "</td></tr>\n"
        }
        return html + "</table>\n"
    }

    static func page(_ review: Review, totalFailures: [String] = []) -> String {
        let t = review.totals
        let failures = review.entries.filter { !$0.gateFailures.isEmpty }.count
        var html = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>derive diff \(escape(review.manifest)): \(escape(review.before)) → \(escape(review.after))</title>
        <style>
        body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
        h1{font-size:1.4em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ccc}
        .summary{background:#fff;border:1px solid #ddd;padding:.8em 1.2em;border-radius:6px}
        .card{background:#fff;border:1px solid #ddd;border-radius:6px;margin:1em 0;padding:.8em}
        .card.fail{border-color:#c00;box-shadow:0 0 0 2px #fcc}
        .kind{font-weight:bold;text-transform:uppercase;font-size:.8em;padding:.1em .4em;border-radius:3px;background:#eee}
        .created{background:#dfd}.deleted{background:#fdd}.rebuilt{background:#ffd}.failed{background:#f99}.budget{background:#f99}
        .row{display:flex;gap:1em;flex-wrap:wrap;align-items:flex-start}
        figure{margin:0}figcaption{font-size:.85em;color:#555}
        figure img{max-width:320px;max-height:320px;border:1px solid #ccc;background:repeating-conic-gradient(#eee 0 25%,#fff 0 50%) 0 0/16px 16px}
        .stack{position:relative;display:inline-block}
        .stack img{display:block;max-width:320px;max-height:320px}
        .stack img.top{position:absolute;left:0;top:0;width:100%;height:100%}
        .stack.blink img.top{visibility:hidden}
        mark{background:#fd5;padding:0 .1em}code{font-size:.9em;word-break:break-all}
        .gate{color:#c00;font-weight:bold}.note{color:#a60}
        table{border-collapse:collapse}td{padding:.1em .6em .1em 0;vertical-align:top}
        </style></head><body>
        <h1>derive diff <code>\(escape(review.manifest))</code>: \(escape(review.before)) → \(escape(review.after))</h1>
        <div class="summary" id="summary">
        <p><b>\(t.created)</b> created, <b>\(t.rebuilt)</b> rebuilt, <b>\(t.deleted)</b> deleted\(t.failed > 0 ? ", <b class=\"gate\">\(t.failed)</b> failing" : "")\(t.budget > 0 ? ", <b class=\"gate\">\(t.budget)</b> over budget" : ""); bytes\(t.sampledOutputs.map { t.estimated ? " (estimated from the \($0) rendered outputs, --sample)" : " (\($0) rendered, --sample)" } ?? "") \(t.bytesBefore.map(String.init) ?? "unknown") → \(t.bytesAfter.map(String.init) ?? "not rendered")\(t.bytesAfter.map { ReviewText.percent(t.bytesBefore, $0) } ?? "")\(failures > 0 ? "; <span class=\"gate\">\(failures) output\(failures == 1 ? "" : "s") crossed a gate</span>" : "")</p>

        """
        // Why CI failed when no single output did: the total gate, a rule over max_total_bytes.
        for failure in totalFailures { html += "<p class=\"gate\">FAIL \(escape(failure))</p>\n" }
        html += changeTable("Buckets", review.buckets.map { ($0.kind.rawValue, $0.name, $0.changes) })
        if !review.styles.isEmpty {
            html += "<h3>Styles</h3><table>\n"
            for style in review.styles {
                html += "<tr><td><span class=\"kind\">\(style.kind.rawValue)</span></td><td>\(escape(style.name))</td><td>"
                if let before = style.before { html += highlighted(before, against: style.after) }
                if style.before != nil, style.after != nil { html += " → " }
                if let after = style.after { html += highlighted(after, against: style.before) }
                html += "</td></tr>\n"
            }
            html += "</table>\n"
        }
        html += changeTable("Rules", review.rules.map { ($0.kind.rawValue, $0.name, $0.changes) })
        if review.isEmpty { html += "<p>No changes: the two revisions render the same outputs.</p>\n" }
        html += "</div>\n"
        var number = 0
        for group in review.groups {
            html += "<section class=\"group\"><h2>\(escape(group.title)) <small>(\(group.entries.count) output\(group.entries.count == 1 ? "" : "s"))</small></h2>\n"
            for entry in group.entries {
                number += 1
                html += "<div class=\"card\(entry.gateFailures.isEmpty ? "" : " fail")\" id=\"o\(number)\">\n"
                html += "<p><span class=\"kind \(entry.kind.rawValue)\">\(entry.kind.rawValue)</span> \(entry.outputBefore.map { "\(escape($0)) → " } ?? "")<b>\(escape(entry.output))</b> from \(escape(entry.source))"
                if let ssim = entry.ssim { html += String(format: " — SSIM <b class=\"ssim\">%.4f</b>", ssim) }
                html += "</p>\n<table>"
                if let before = entry.before { html += "<tr><td>before</td><td>\(highlighted(before, against: entry.after))</td></tr>" }
                if let after = entry.after { html += "<tr><td>after</td><td>\(highlighted(after, against: entry.before))</td></tr>" }
                html += entry.kind == .budget ? "<tr><td>bytes</td><td>\(bytes(entry.bytesAfter)) (unchanged)</td></tr>" : "<tr><td>bytes</td><td>\(bytes(entry.bytesBefore)) → \(entry.kind == .deleted || entry.kind == .failed ? "—" : entry.bytesAfter.map { "\($0) bytes\(ReviewText.percent(entry.bytesBefore, $0))" } ?? "not rendered")</td></tr>"
                html += "<tr><td>size</td><td>\(entry.sizeBefore.map { $0.description } ?? "—") → \(entry.sizeAfter.map { $0.description } ?? "—")</td></tr>"
                html += "</table>\n"
                // With gates applied the failure is already the first gate failure: said once.
                if let failure = entry.failure, entry.gateFailures.isEmpty {
                    html += "<p class=\"gate\">\(entry.kind == .budget ? "" : "fails to build: ")\(escape(failure))</p>\n"
                }
                for failure in entry.gateFailures { html += "<p class=\"gate\">FAIL \(escape(failure))</p>\n" }
                if let note = entry.note { html += "<p class=\"note\">\(escape(note))</p>\n" }
                html += "<div class=\"row\">\n"
                if let old = entry.oldImage { html += "<figure><img src=\"\(link(old))\" alt=\"old\"><figcaption>old</figcaption></figure>\n" }
                if let new = entry.newImage { html += "<figure><img src=\"\(link(new))\" alt=\"new\"><figcaption>new</figcaption></figure>\n" }
                if let heat = entry.heatMap { html += "<figure><img src=\"\(link(heat))\" alt=\"difference\"><figcaption>difference (bright = different)</figcaption></figure>\n" }
                if let old = entry.oldImage, let new = entry.newImage {
                    html += """
                    <figure><div class="stack"><img src="\(link(old))" alt="old"><img class="top" src="\(link(new))" alt="new"></div>
                    <figcaption><input type="range" min="0" max="100" value="100" class="slider" aria-label="new image shown"> <button type="button" class="blink">blink</button> slide or blink: new over old</figcaption></figure>

                    """
                }
                html += "</div></div>\n"
            }
            html += "</section>\n"
        }
        html += """
        <script>
        document.querySelectorAll('figure').forEach(function (figure) {
          var stack = figure.querySelector('.stack'); if (!stack) return;
          var top = stack.querySelector('img.top'), slider = figure.querySelector('.slider'), button = figure.querySelector('.blink');
          var timer = null;
          slider.addEventListener('input', function () { top.style.clipPath = 'inset(0 ' + (100 - slider.value) + '% 0 0)'; });
          button.addEventListener('click', function () {
            if (timer) { clearInterval(timer); timer = null; stack.classList.remove('blink'); button.textContent = 'blink'; return; }
            timer = setInterval(function () { stack.classList.toggle('blink'); }, 500); button.textContent = 'stop';
          });
        });
        </script>
        </body></html>

        """
        return html
    }
}
