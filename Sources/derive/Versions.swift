import Builder

/// What `derive --version` prints.
enum Versions {
    /// Derive's own version, raised when a release is cut.
    static let derive = "0.13.0"

    /// libvips' version as the render worker describes it (`EngineIdentityCache`: from the disk
    /// cache when nothing changed; derive does not load libvips). Without a worker, why not.
    static func libvips() -> String {
        do { return try Workspace.engineLookup.get().report.libvips } catch { return "unknown (\(error))" }
    }

    static var text: String { "derive \(derive)\nlibvips \(libvips())" }
}
