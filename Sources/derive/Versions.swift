import Builder

/// What `derive --version` prints.
enum Versions {
    /// Derive's own version, raised when a release is cut; `-dev` between releases (after 0.13,
    /// which README names as an older release: attack 36a's L5).
    static let derive = "0.14.0-dev"

    /// libvips' version as the render worker describes it (`EngineIdentityCache`: from the disk
    /// cache when nothing changed; derive does not load libvips). Without a worker, why not.
    static func libvips() -> String {
        do { return try Workspace.engineLookup.get().report.libvips } catch { return "unknown (\(error))" }
    }

    static var text: String { "derive \(derive)\nlibvips \(libvips())" }
}
