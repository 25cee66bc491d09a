import Foundation
import Testing
import TestSupport
import Imaging

/// The catalogue page in a real browser, as DiffReportBrowserTests checks the review: every
/// `<img>` decodes, no script or console error, and a screenshot is written. Skipped, saying
/// why, where `chromium` is not installed.
@Suite(.ownThreads, .serialized, .enabled(if: Chromium.path != nil,
                             "headless Chromium check skipped: 'chromium' is not on PATH (apt-get install -y --no-install-recommends chromium)"))
struct CatalogBrowserTests {
    @Test func catalogueLoadsInChromiumWithEveryImageAndNoErrors() throws {
        let project = try CatalogProject()
        defer { project.remove() }
        let report = project.folder.appendingPathComponent("sheet")
        let result = try project.run(["catalog", "--html", report.path])
        #expect(result.status == 0, "\(result.stderr)")
        let page = try String(contentsOf: report.appendingPathComponent("index.html"), encoding: .utf8)
        let checker = """
        <script>window.__errors=[];window.addEventListener('error',function(e){__errors.push(String(e.message||(e.target&&e.target.src)))},true);
        var __ce=console.error;console.error=function(){__errors.push(Array.from(arguments).join(' '));__ce.apply(console,arguments)};
        window.addEventListener('load',function(){var imgs=Array.from(document.images);
        document.body.setAttribute('data-check',JSON.stringify({images:imgs.length,broken:imgs.filter(function(i){return !(i.complete&&i.naturalWidth>0)}).map(function(i){return i.getAttribute('src')}),errors:__errors}))});</script>
        """
        try Data(page.replacingOccurrences(of: "<head>", with: "<head>" + checker).utf8).write(to: report.appendingPathComponent("check.html"))
        let profile = project.folder.appendingPathComponent("chromium-profile")
        let dom = try DiffReportBrowserTests.browse(["--allow-file-access-from-files", "--virtual-time-budget=5000", "--dump-dom",
                                                     report.appendingPathComponent("check.html").absoluteString], profile: profile)
        let marker = try #require(dom.stdout.range(of: "data-check=\""), "no check result in the DOM: \(dom.stderr.suffix(2000))")
        let rest = dom.stdout[marker.upperBound...]
        let json = String(rest[..<(rest.firstIndex(of: "\"") ?? rest.endIndex)]).replacingOccurrences(of: "&quot;", with: "\"")
        let found = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        // 2 styles × 2 samples.
        #expect(found["images"] as? Int == 6)   // (2 styles + 1 rule recipe) × 2 samples
        #expect((found["broken"] as? [Any])?.isEmpty == true, "\(found)")
        #expect((found["errors"] as? [Any])?.isEmpty == true, "\(found)")
        let shot = project.folder.appendingPathComponent("catalog.png")
        let screenshot = try DiffReportBrowserTests.browse(["--window-size=1024,768", "--screenshot=\(shot.path)",
                                                            report.appendingPathComponent("index.html").absoluteString], profile: profile)
        #expect(screenshot.status == 0, "\(screenshot.stderr.suffix(2000))")
        let raster = try Raster.decode(Data(contentsOf: shot))
        #expect(raster.width == 1024 && raster.height == 768)
        try? FileManager.default.copyItem(at: shot, to: URL(fileURLWithPath: NSTemporaryDirectory() + "derive-catalog.png"))
    }
}
