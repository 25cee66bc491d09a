import Foundation
import Imaging
import ProcessLanguage
import RenderWorkers

// A render worker: renders requests from its parent (derive) over fd 3, one at a time. The
// engine (libvips) is linked here only: derive reaches it through this process.
RenderWorkerMain.run(engine: WorkerEngine(
    version: { Engine.version },
    start: { _ = try? Engine.vectorised() },
    describe: { fontTypes in
        var fonts: [String: String] = [:], rendering: [String: String] = [:]
        for type in Array(FontCatalog.fonts.keys) + fontTypes {
            guard let resolved = try? FontCatalog.resolved(for: type) else { continue }
            fonts[type] = resolved.file
            rendering[type] = resolved.rendering
        }
        var report = EngineReport(version: Engine.version, renderVersion: Engine.renderVersion, libvips: Engine.libvipsVersion,
                                  encoderSettings: Engine.encoderSettings,
                                  libraries: Engine.libraryVersions.map { EngineReport.Library(name: $0.name, version: $0.version) },
                                  fonts: fonts, fontRendering: rendering, fontConfigurationPaths: FontCatalog.configurationPaths())
        // A family installed but drawn as another is not "not installed" (attack 51c's 5).
        let substitutes = Dictionary(fontTypes.compactMap { type in FontCatalog.substitute(for: type).map { (type, $0) } }, uniquingKeysWith: { first, _ in first })
        if !substitutes.isEmpty { report.fontSubstitutes = substitutes }
        return report
    },
    render: { source, pipeline, limits, resolver, reach in
        try Engine(limits: limits).render(source, pipeline, resolver: resolver, reach: reach)
    },
    undrawable: { text, type in
        do { try FontCatalog.checkDrawable(text, type: type); return nil } catch let error as ProcessError { return error.message } catch { return "\(error)" }
    },
    drawing: { text in FontCatalog.drawing(of: text.text, type: text.type, size: text.size) }
))
