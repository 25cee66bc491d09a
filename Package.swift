// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Derive",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "derive", targets: ["derive"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
    ],
    targets: [
        // libvips through pkg-config; the shim holds the non-variadic wrappers Swift can call.
        .systemLibrary(
            name: "CVips",
            pkgConfig: "vips",
            providers: [.apt(["libvips-dev"])]
        ),
        .target(name: "CVipsShim", dependencies: ["CVips"], linkerSettings: [.linkedLibrary("fontconfig")]),
        .systemLibrary(
            name: "CYAML",
            pkgConfig: "yaml-0.1",
            providers: [.apt(["libyaml-dev"])]
        ),
        .target(name: "ProcessLanguage"),
        .target(name: "Manifest", dependencies: ["ProcessLanguage", "CYAML"]),
        .target(name: "Imaging", dependencies: ["ProcessLanguage", "CVipsShim"]),
        .target(
            name: "Planner",
            dependencies: [
                "Manifest", "ProcessLanguage",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .target(
            name: "Access",
            dependencies: ["Manifest", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .target(name: "Builder", dependencies: ["Planner", "Imaging", "Manifest", "ProcessLanguage"]),
        .executableTarget(
            name: "derive",
            dependencies: [
                "ProcessLanguage", "Imaging", "Manifest", "Planner", "Builder", "Access",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "ProcessLanguageTests", dependencies: ["ProcessLanguage"]),
        .testTarget(name: "ImagingTests", dependencies: ["Imaging", "ProcessLanguage"]),
        .testTarget(name: "ManifestTests", dependencies: ["Manifest", "ProcessLanguage"]),
        .testTarget(name: "PlannerTests", dependencies: ["Planner", "Builder", "Manifest", "Imaging", "ProcessLanguage"]),
        .testTarget(name: "AccessTests", dependencies: ["Access"]),
        .testTarget(name: "DeriveCLITests", dependencies: ["derive", "Imaging", "Builder", "ProcessLanguage"]),
    ],
    swiftLanguageModes: [.v6]
)
