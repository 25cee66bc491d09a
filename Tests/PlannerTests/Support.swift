import Foundation
import TestSupport
import Testing
import Builder
import Manifest
import Planner
import ProcessLanguage

/// Renders without libvips: the output names the pipeline and the source digest, so changes
/// in either change the bytes. A source starting with "BROKEN" fails like a corrupt image.
struct FakeRenderer: DerivativeRenderer {
    func render(_ source: Data, _ pipeline: Pipeline, bucketPath: String) throws -> Rendered {
        if source.starts(with: Data("BROKEN".utf8)) {
            throw ProcessError(.badRequest, ec: "0040-00000005", "the source image is corrupt or truncated")
        }
        let text = "\(pipeline.canonical)\n\(ContentDigests.digest(source))\n"
        return Rendered(bytes: Data(text.utf8), width: 10, height: 5, format: pipeline.outputFormat?.rawValue ?? "jpg")
    }

    func memoryEstimate(_ source: Data) -> Int { 1 << 20 }
}

/// A manifest on a real temporary file, its buckets in a `MemoryDisk`, state in memory.
final class Fixture {
    let folder: URL
    let disk = MemoryDisk()
    let store: StateStore
    /// Sources here are text the stand-in renderer draws: not judged as images.
    var identity = EngineIdentity(renderVersion: "1", libvips: "8.14.1", encoder: "q85", refusesNonImages: false)

    init(_ yaml: String, sources: [String: String]) throws {
        folder = (try ScratchFolder.make("derive-plan"))
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        store = try StateStore(inMemory: ())
        try setManifest(yaml)
        for (key, content) in sources { disk.put(path("photos/" + key), Data(content.utf8)) }
        disk.advance(seconds: 5)
    }

    func path(_ relative: String) -> String { folder.appendingPathComponent(relative).path }
    var manifestPath: String { path("derive.yaml") }

    func setManifest(_ yaml: String) throws {
        try Data(yaml.utf8).write(to: URL(fileURLWithPath: manifestPath))
        // The witness reads manifest files through the disk seam.
        disk.put(manifestPath, Data(yaml.utf8))
    }

    func manifest() throws -> Manifest {
        let result = ManifestLoader(lister: disk).load(manifestPath)
        let errors = result.diagnostics.errors
        guard let manifest = result.manifest, errors.isEmpty else {
            throw PlanError(message: "manifest errors: \(errors)")
        }
        return manifest
    }

    func planner() throws -> Planner {
        try Planner(manifest: try manifest(), manifestPath: manifestPath, disk: disk, store: store, identity: identity)
    }

    func plan() throws -> Plan { try planner().plan() }

    /// Plans and builds; the clock moves on afterwards so the files written count as settled.
    @discardableResult
    func build() throws -> (Plan, BuildReport) {
        let planner = try planner()
        let plan = try planner.plan()
        let report = try Builder(planner: planner, manifestPath: manifestPath, renderer: FakeRenderer(),
                                 options: BuildOptions(jobs: 2, quiet: true)).build(plan)
        disk.advance(seconds: 5)
        return (plan, report)
    }

    func items(_ plan: Plan, _ kind: PlanItem.Kind) -> [String] { plan.items.filter { $0.kind == kind }.map(\.output) }
}

let photosAndSite = """
version: 1
buckets:
  photos:
    path: photos
  site:
    path: site
    acl: public-read
styles:
  thumb: image/resize,w_200
  hero: image/resize,w_1600/format,webp
derivatives:
  - name: gallery
    from: photos/**/*.jpg
    styles: [thumb, hero]
    to: site/{dir}/{name}.{style}.{ext}
    acl: public-read
"""
