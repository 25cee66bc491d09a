import Imaging

/// What `derive --version` prints.
enum Versions {
    /// Derive's own version, raised when a release is cut.
    static let derive = "0.13.0"

    /// libvips' version as the engine reports it (`vips_version_string`: no libvips start-up).
    /// The one place the CLI asks: when rendering leaves this process, ask a render worker here.
    static func libvips() -> String { Engine.libvipsVersion }

    static var text: String { "derive \(derive)\nlibvips \(libvips())" }
}
