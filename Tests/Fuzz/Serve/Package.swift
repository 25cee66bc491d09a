// swift-tools-version:6.0
// libFuzzer targets for `derive serve`'s input handling. The modules are the package's own
// sources (symbolic links into ../../../Sources), built here with -sanitize=fuzzer by
// ../run-serve; nothing in this folder is part of the derive build.
import PackageDescription

let package = Package(
    name: "DeriveServeFuzz",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.20.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
    ],
    targets: [
        .systemLibrary(name: "CVips", pkgConfig: "vips"),
        .target(name: "CVipsShim", dependencies: ["CVips"],
                linkerSettings: [.linkedLibrary("fontconfig"), .linkedLibrary("jpeg"), .linkedLibrary("heif")]),
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1"),
        .target(name: "ProcessLanguage"),
        .target(name: "Confinement"),
        .target(name: "Manifest", dependencies: ["ProcessLanguage", "CYAML", "Confinement"]),
        .target(name: "ImagingCore", dependencies: ["ProcessLanguage", "Confinement"]),
        .target(name: "Imaging", dependencies: ["ImagingCore", "ProcessLanguage", "CVipsShim", "Confinement"]),
        .target(name: "Access", dependencies: ["Manifest", .product(name: "Crypto", package: "swift-crypto")]),
        .target(
            name: "DeriveServer",
            dependencies: [
                "Access", "ImagingCore", "Manifest", "ProcessLanguage", "Confinement",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .executableTarget(name: "FuzzObjectKey", dependencies: ["Confinement"]),
        .executableTarget(name: "FuzzSignatures", dependencies: ["Access"]),
        .executableTarget(name: "FuzzRouter", dependencies: ["DeriveServer", "Access", "Manifest", "Imaging", "Confinement"]),
    ],
    swiftLanguageModes: [.v6]
)
