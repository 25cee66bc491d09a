import CVipsShim
import Foundation
import ProcessLanguage

/// libvips, started once per process and only when there is pixel work to do.
enum Vips {
    private static let started: Result<Void, ProcessError> = {
        // One libvips worker thread per render: throughput comes from rendering several images
        // at once, each on its own thread (see design.md).
        if ProcessInfo.processInfo.environment["VIPS_CONCURRENCY"] == nil {
            setenv("VIPS_CONCURRENCY", "1", 1)
        }
        // Problems that matter become errors (fail_on); libvips' own stderr warnings are noise.
        if ProcessInfo.processInfo.environment["VIPS_WARNING"] == nil {
            setenv("VIPS_WARNING", "0", 1)
        }
        // libvips finds its modules (HEIF/AVIF, ...) under `$VIPSHOME/lib` when it is set: one
        // left from another install loaded none, and AVIF output failed blaming the source
        // (attack 30's finding 6). The engine is the libvips this program was built with.
        unsetenv("VIPSHOME")
        if dv_init("derive") != 0 {
            return .failure(ProcessError(.internalError, "libvips failed to start: \(takeError())"))
        }
        vips_concurrency_set(1)
        // Lets tests see that a no-op build never starts libvips. The line names the program
        // and why: a render worker started only to describe the engine (fontconfig's cache
        // folder changed, say) renders nothing, and a no-op build may start one.
        if let trace = ProcessInfo.processInfo.environment["DERIVE_TRACE_VIPS"] {
            let program = (CommandLine.arguments.first ?? "derive").split(separator: "/").last.map(String.init) ?? "derive"
            let reason = trace == describeTrace ? " to describe the engine" : ""
            FileHandle.standardError.write(Data("\(program): libvips started\(reason)\n".utf8))
        }
        return .success(())
    }()

    /// `DERIVE_TRACE_VIPS`'s value in a render worker started with `--describe` (`RenderWorkerMain`).
    static let describeTrace = "describe"

    static func start() throws {
        try started.get()
    }

    /// Whether libvips vectorises with liborc (always off: see `dv_init`).
    static var vectorised: Bool { vips_vector_isenabled() != 0 }

    /// libvips' version, e.g. `8.14.1`, which is part of every fingerprint.
    public static var version: String {
        String(cString: vips_version_string())
    }

    /// The first line of a libvips error: the reason. The lines after it are what failed in
    /// turn downstream ("vips2png: unable to write to target target"), which says nothing more.
    static func firstReason(_ message: String) -> String {
        String(message.split(separator: "\n", maxSplits: 1).first ?? "")
    }

    /// Copies and clears libvips' global error buffer.
    @discardableResult
    static func takeError() -> String {
        guard let pointer = dv_error_take() else { return "" }
        defer { dv_free(pointer) }
        return String(cString: pointer).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// One owned reference to an immutable `VipsImage`, released exactly once.
final class VImage: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<VipsImage>

    init(_ pointer: UnsafeMutablePointer<VipsImage>) { self.pointer = pointer }
    deinit { dv_unref(pointer) }

    var width: Int { Int(vips_image_get_width(pointer)) }
    var height: Int { Int(vips_image_get_height(pointer)) }
    var bands: Int { Int(vips_image_get_bands(pointer)) }
    var hasAlpha: Bool { vips_image_hasalpha(pointer) != 0 }

    func int(_ name: String) -> Int? {
        guard vips_image_get_typeof(pointer, name) != 0 else { return nil }
        var value: Int32 = 0
        guard vips_image_get_int(pointer, name, &value) == 0 else { Vips.takeError(); return nil }
        return Int(value)
    }

    func intArray(_ name: String) -> [Int]? {
        guard vips_image_get_typeof(pointer, name) != 0 else { return nil }
        var values: UnsafeMutablePointer<Int32>?
        var count: Int32 = 0
        guard vips_image_get_array_int(pointer, name, &values, &count) == 0, let values else {
            Vips.takeError(); return nil
        }
        return (0..<Int(count)).map { Int(values[$0]) }
    }

    /// Any metadata field rendered as text (EXIF fields are strings like `1 (Top-left, Short, ...)`).
    func text(_ name: String) -> String? {
        guard vips_image_get_typeof(pointer, name) != 0 else { return nil }
        var value: UnsafeMutablePointer<CChar>?
        guard vips_image_get_as_string(pointer, name, &value) == 0, let value else { Vips.takeError(); return nil }
        defer { dv_free(value) }
        return String(cString: value)
    }

    var fieldNames: [String] {
        guard let fields = vips_image_get_fields(pointer) else { return [] }
        defer { dv_strfreev(fields) }
        var names: [String] = []
        var index = 0
        while let field = fields[index] {
            names.append(String(cString: field))
            index += 1
        }
        return names
    }

    /// Runs a libvips operation that writes one new image, turning failure into a `ProcessError`.
    func apply(_ what: String, action: String? = nil,
               _ body: (UnsafeMutablePointer<VipsImage>, UnsafeMutablePointer<UnsafeMutablePointer<VipsImage>?>) -> Int32) throws -> VImage {
        try VImage.make(what, action: action) { body(pointer, $0) }
    }

    static func make(_ what: String, action: String? = nil,
                     _ body: (UnsafeMutablePointer<UnsafeMutablePointer<VipsImage>?>) -> Int32) throws -> VImage {
        var out: UnsafeMutablePointer<VipsImage>?
        let status = body(&out)
        guard status == 0, let out else {
            if let out { dv_unref(out) }
            throw ProcessError(.internalError, "\(what) failed: \(Vips.takeError())", action: action)
        }
        // Under a render's deadline, libvips stops evaluating this image once it fires.
        dv_watch_current_attach(out)
        return VImage(out)
    }

    /// Pixels as 8-bit bytes, row-major, `bands` per pixel.
    func bytes() throws -> [UInt8] {
        let image = try apply("cast") { dv_cast_uchar($0, $1) }
        var size = 0
        guard let memory = vips_image_write_to_memory(image.pointer, &size) else {
            throw ProcessError(.internalError, "reading pixels failed: \(Vips.takeError())")
        }
        defer { dv_free(memory) }
        return Array(UnsafeRawBufferPointer(start: memory, count: size))
    }

    static func fromBytes(_ bytes: [UInt8], width: Int, height: Int, bands: Int) throws -> VImage {
        try make("image from memory") { out in
            bytes.withUnsafeBytes { raw in
                guard let image = vips_image_new_from_memory_copy(raw.baseAddress, raw.count, Int32(width),
                                                                  Int32(height), Int32(bands), VIPS_FORMAT_UCHAR) else {
                    return -1
                }
                out.pointee = image
                return 0
            }
        }
    }
}
