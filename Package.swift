// swift-tools-version:6.0
import PackageDescription

// Release executables carry the Swift runtime, Foundation and its ICU data inside them: loading
// and relocating about 20 shared Swift libraries at every start cost more process time than a
// 2 000-output no-op build's own work (issue 15). Release only: `swift test` links the executable
// targets' objects into a test bundle beside XCTest, which uses the shared runtime, and one
// process must not hold two copies of it.
// The executable module is compiled with the flag too: against the static Foundation module,
// its object names what the static Foundation needs (CoreFoundation, the ICU data, ...) to link.
let staticSwiftRuntime: [LinkerSetting] = [.unsafeFlags(["-static-stdlib"], .when(configuration: .release))]
let staticSwiftRuntimeImports: [SwiftSetting] = [.unsafeFlags(["-static-stdlib"], .when(configuration: .release))]
// derive exports none of its 36 000 symbols (swiftc links executables with --export-dynamic):
// the Swift runtime's start-up `dladdr` walked them all, 1.3 M instructions of every command,
// a twelfth of `derive --version` (issue 15). Nothing looks up a symbol of derive's own by name
// (its one `dlsym` asks libc for renameat2); crash backtraces read the file's symbol table.
// Release only, as above; the worker keeps the default.
let deriveLinkerSettings: [LinkerSetting] = staticSwiftRuntime
    + [.unsafeFlags(["-Xlinker", "--no-export-dynamic"], .when(configuration: .release))]

let package = Package(
    name: "Derive",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "derive", targets: ["derive"]),
        // Renders in child processes for derive (RenderWorkers); must sit beside derive.
        .executable(name: "derive-render-worker", targets: ["derive-render-worker"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.20.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.0.0"),
        // Already in the tree through Hummingbird; named so the server can use its thread pools and logger.
        .package(url: "https://github.com/apple/swift-nio", from: "2.81.0"),
        // Already in the tree through Hummingbird; named for the HTTP parts a connection guard sees.
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.24.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
    ],
    targets: [
        // libvips through pkg-config; the shim holds the non-variadic wrappers Swift can call.
        .systemLibrary(
            name: "CVips",
            pkgConfig: "vips",
            providers: [.apt(["libvips-dev"])]
        ),
        .target(name: "CVipsShim", dependencies: ["CVips"],
                // Pango as libvips' text draws with: the worker asks it which faces a text is drawn with.
                linkerSettings: [.linkedLibrary("fontconfig"), .linkedLibrary("gmodule-2.0"), .linkedLibrary("jpeg"), .linkedLibrary("heif"),
                                 .linkedLibrary("pangocairo-1.0"), .linkedLibrary("pangoft2-1.0"), .linkedLibrary("pango-1.0")]),
        .systemLibrary(
            name: "CYAML",
            pkgConfig: "yaml-0.1",
            providers: [.apt(["libyaml-dev"])]
        ),
        .target(name: "ProcessLanguage"),
        // Child processes bound to the thread that starts and waits for them (Linux's parent-death
        // signal, which posix_spawn cannot set): git, for the git proof.
        .target(name: "CChildProcess"),
        // Keys as bytes and file access below a folder that never follows a link out of it.
        .target(name: "Confinement"),
        // GRDBSQLite (the system SQLite GRDB links): a state folder above a path is refused only when
        // its database names a manifest in its owner record (`ForeignStateFolders`).
        .target(name: "Manifest", dependencies: ["ProcessLanguage", "CYAML", "Confinement", .product(name: "GRDBSQLite", package: "GRDB.swift")]),
        // The engine's pure types (limits, outputs, resolvers, header probe): no libvips, so that
        // derive, which renders only through derive-render-worker, does not link it.
        .target(name: "ImagingCore", dependencies: ["ProcessLanguage", "Confinement"]),
        .target(name: "Imaging", dependencies: ["ImagingCore", "ProcessLanguage", "CVipsShim", "Confinement"]),
        // A pool of derive-render-worker processes fed over socket pairs: deadlines by SIGKILL,
        // crashes confined to one render, a memory cap per worker.
        // The worker's loop takes its engine from the executable, so this module links no libvips.
        .target(name: "RenderWorkers", dependencies: ["ImagingCore", "ProcessLanguage", "Confinement", "CChildProcess"]),
        .executableTarget(name: "derive-render-worker", dependencies: ["RenderWorkers", "Imaging", "ProcessLanguage"],
                          swiftSettings: staticSwiftRuntimeImports, linkerSettings: staticSwiftRuntime),
        .target(
            name: "Planner",
            dependencies: [
                // ImagingCore for SourceHeader, the sources' displayed size (no libvips).
                "Manifest", "ProcessLanguage", "Confinement", "ImagingCore", "CChildProcess",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .target(
            name: "Access",
            dependencies: ["Manifest", .product(name: "Crypto", package: "swift-crypto")]
        ),
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
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        // SSIM, heat maps and the small BMP/PNG codecs they need, in Swift (no libvips): for
        // `derive diff` and the build's `min_ssim` budget.
        .target(name: "ImageSimilarity", dependencies: ["ProcessLanguage"]),
        .target(name: "Builder", dependencies: ["ImageSimilarity", "Planner", "ImagingCore", "RenderWorkers", "Manifest", "ProcessLanguage", "Confinement"]),
        // `derive diff`: two revisions of a manifest planned, rendered and compared for review.
        .target(name: "Review", dependencies: ["ImageSimilarity", "Builder", "Planner", "Manifest", "ImagingCore", "ProcessLanguage", "Confinement",
                                               .product(name: "Crypto", package: "swift-crypto")]),
        .executableTarget(
            name: "derive",
            dependencies: [
                // Never Imaging: libvips is loaded by derive-render-worker only (DeriveCLITests checks with ldd).
                "ProcessLanguage", "ImagingCore", "Manifest", "Planner", "Builder", "Access", "DeriveServer", "RenderWorkers", "Review", "Confinement",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: staticSwiftRuntimeImports,
            linkerSettings: deriveLinkerSettings
        ),
        // Every test suite's `.ownThreads` trait: tests run on threads of their own, not the 2-core
        // cooperative pool (Tests/TestSupport/OwnThreads.swift).
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "ProcessLanguageTests", dependencies: ["TestSupport", "ProcessLanguage"]),
        .testTarget(name: "ConfinementTests", dependencies: ["TestSupport", "Confinement"]),
        .testTarget(name: "ImagingTests", dependencies: ["TestSupport", "Imaging", "ProcessLanguage", "ImageSimilarity"]),
        .testTarget(name: "ManifestTests", dependencies: ["TestSupport", "Manifest", "ProcessLanguage"]),
        .testTarget(name: "PlannerTests", dependencies: ["TestSupport", "Planner", "Builder", "Manifest", "Imaging", "ProcessLanguage", "CChildProcess",
                                                          .product(name: "GRDB", package: "GRDB.swift")]),
        // Depends on the worker executable so that `swift test` builds it before the tests run.
        .testTarget(name: "RenderWorkersTests", dependencies: ["TestSupport", "RenderWorkers", "Imaging", "ProcessLanguage", "derive-render-worker"]),
        .testTarget(name: "ReviewTests", dependencies: ["TestSupport", "ImageSimilarity", "Review", "Planner", "Manifest", "ProcessLanguage"]),
        .testTarget(name: "AccessTests", dependencies: ["TestSupport", "Access"]),
        .testTarget(name: "DeriveServerTests", dependencies: ["TestSupport", "DeriveServer", "RenderWorkers", "Access", "Manifest", "Imaging", "ProcessLanguage", "Confinement",
                                                             .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(name: "DeriveCLITests", dependencies: ["TestSupport", "derive", "Imaging", "Builder", "ProcessLanguage", "Access",
                                                             .product(name: "GRDB", package: "GRDB.swift")]),
    ],
    swiftLanguageModes: [.v6]
)
