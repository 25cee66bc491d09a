// swift-tools-version:6.0
// libFuzzer targets for the engine: the x-oss-process parser and Engine.render on mutated small
// images of every source format. The modules are the package's own sources (symbolic links into
// ../../../Sources), built here with -sanitize=fuzzer,address by ../run; nothing in this folder
// is part of the derive build.
import PackageDescription

let package = Package(
    name: "DeriveEngineFuzz",
    platforms: [.macOS(.v13)],
    targets: [
        .systemLibrary(name: "CVips", pkgConfig: "vips"),
        .target(name: "CVipsShim", dependencies: ["CVips"],
                linkerSettings: [.linkedLibrary("fontconfig"), .linkedLibrary("jpeg"), .linkedLibrary("heif")]),
        .target(name: "ProcessLanguage"),
        .target(name: "Confinement"),
        .target(name: "ImagingCore", dependencies: ["ProcessLanguage", "Confinement"]),
        .target(name: "Imaging", dependencies: ["ImagingCore", "ProcessLanguage", "CVipsShim", "Confinement"]),
        .executableTarget(name: "FuzzProcessLanguage", dependencies: ["ProcessLanguage"]),
        .executableTarget(name: "FuzzRender", dependencies: ["Imaging", "ProcessLanguage"]),
    ],
    swiftLanguageModes: [.v6]
)
