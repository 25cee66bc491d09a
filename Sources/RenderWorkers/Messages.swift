import Foundation
import ImagingCore
import ProcessLanguage

/// What the parent sends for one render: everything as bytes, so the worker touches no file.
/// Watermark objects were resolved (and authorised) by the parent; an object the parent could
/// not resolve travels as its error, which the worker throws where the engine would have asked.
struct RenderRequest {
    var limits: Limits
    /// Bytes of address space the worker may use during this render (0: no cap).
    var memoryCap: Int
    /// How far the render goes: the output, or only its checks (`derive init`).
    var reach: RenderReach = .output
    /// Each action's canonical text; re-parsed one by one in the worker (the whole canonical
    /// chain, defaults spelled out, may be longer than a process string may be).
    var actions: [String]
    var objects: [(key: String, result: Result<Data, ProcessError>)]
    var source: Data

    /// The payload in pieces, to be sent one after the other as one frame: the source and the marks are
    /// pieces of their own, shared with the caller's bytes rather than copied into one message
    /// (a raised-limit source was held twice by the parent, once as itself and once encoded).
    func encodedParts() -> [Data] {
        var parts: [Data] = []
        var writer = WireWriter()
        func blob(_ data: Data) {
            writer.int(data.count)
            parts.append(writer.data)
            parts.append(data)
            writer = WireWriter()
        }
        writer.int(limits.maxBytes)
        writer.int(limits.maxSide)
        writer.int(limits.maxPixels)
        writer.int(limits.maxOutputSide)
        writer.double(limits.renderSeconds)
        writer.int(limits.maxWork)
        writer.int(limits.maxMemory)
        writer.byte(limits.setBy.rawValue)
        writer.int(memoryCap)
        writer.byte(reach.rawValue)
        writer.int(actions.count)
        for action in actions { writer.string(action) }
        writer.int(objects.count)
        for (key, result) in objects {
            writer.string(key)
            switch result {
            case .success(let data):
                writer.byte(0)
                blob(data)
            case .failure(let error):
                writer.byte(1)
                error.write(to: &writer)
            }
        }
        blob(source)
        return parts
    }

    init(limits: Limits, memoryCap: Int, actions: [String], objects: [(key: String, result: Result<Data, ProcessError>)], source: Data,
         reach: RenderReach = .output) {
        self.limits = limits
        self.memoryCap = memoryCap
        self.reach = reach
        self.actions = actions
        self.objects = objects
        self.source = source
    }

    /// Decodes `payload`, which becomes the source: the fields before it are cut off in place, so
    /// the worker never holds the source twice (the frame, then the request's copy of it).
    init(taking payload: inout Data) throws {
        let fields = try Self.fields(of: payload)
        limits = fields.limits
        memoryCap = fields.memoryCap
        reach = fields.reach
        actions = fields.actions
        objects = fields.objects
        // The reader is gone: `payload` is the frame's only owner, so this moves the source's
        // bytes to the front of the same buffer instead of copying them to a new one.
        payload.removeSubrange(payload.startIndex..<fields.sourceStart)
        source = payload
        payload = Data()
    }

    /// Every field but the source, and where the source's bytes start (it is the last field).
    private static func fields(of payload: Data) throws
        -> (limits: Limits, memoryCap: Int, reach: RenderReach, actions: [String], objects: [(key: String, result: Result<Data, ProcessError>)], sourceStart: Int) {
        var reader = WireReader(payload)
        var limits = Limits(maxBytes: try reader.int(), maxSide: try reader.int(), maxPixels: try reader.int(),
                            maxOutputSide: try reader.int(), renderSeconds: try reader.double(), maxWork: try reader.int(),
                            maxMemory: try reader.int())
        guard let setBy = Limits.Setting(rawValue: try reader.byte()) else { throw WireError("a render request names an unknown limit setting") }
        limits.setBy = setBy
        let memoryCap = try reader.int()
        guard let reach = RenderReach(rawValue: try reader.byte()) else { throw WireError("a render request names an unknown reach") }
        let actionCount = try reader.int()
        guard (0...Pipeline.maxActions).contains(actionCount) else { throw WireError("a render request names \(actionCount) actions") }
        let actions = try (0..<actionCount).map { _ in try reader.string() }
        let objectCount = try reader.int()
        guard (0...64).contains(objectCount) else { throw WireError("a render request carries \(objectCount) objects") }
        let objects: [(key: String, result: Result<Data, ProcessError>)] = try (0..<objectCount).map { _ in
            let key = try reader.string()
            if try reader.byte() == 0 { return (key, .success(try reader.bytes())) }
            return (key, .failure(try ProcessError.read(from: &reader)))
        }
        let sourceStart = try reader.skipBytes()
        guard reader.atEnd else { throw WireError("a render request has bytes after its fields") }
        return (limits, memoryCap, reach, actions, objects, sourceStart)
    }

    /// The source's and objects' bytes, which the worker holds for the whole render.
    var heldBytes: Int {
        objects.reduce(source.count) { total, object in
            if case .success(let data) = object.result { return total + data.count }
            return total
        }
    }

    /// The pipeline the parent sent, parsed action by action.
    func pipeline() throws -> Pipeline {
        var parsed: [Action] = []
        for text in actions {
            parsed += try Pipeline.parse("image/" + text).actions
        }
        let pipeline = Pipeline(actions: parsed)
        let sent = "image/" + actions.joined(separator: "/")
        guard pipeline.canonical == sent else {
            throw ProcessError(.internalError, "the render worker read the chain as '\(pipeline.canonical)', not '\(sent)' as sent")
        }
        return pipeline
    }
}

/// What the worker answers: the engine's output or its error, field for field.
enum RenderReply {
    case output(RenderOutput)
    case failure(ProcessError)

    func encoded() -> Data {
        var writer = WireWriter()
        switch self {
        case .output(let output):
            writer.byte(0)
            switch output.kind {
            case .image(let format):
                writer.byte(0)
                writer.string(format.rawValue)
            case .json:
                writer.byte(1)
            }
            writer.int(output.width)
            writer.int(output.height)
            writer.int(output.frames)
            writer.int(output.decodedPixels)
            writer.bytes(output.bytes)
        case .failure(let error):
            writer.byte(1)
            error.write(to: &writer)
        }
        return writer.data
    }

    init(_ payload: Data) throws {
        var reader = WireReader(payload)
        if try reader.byte() == 0 {
            let kind: RenderOutput.Kind
            if try reader.byte() == 0 {
                let name = try reader.string()
                guard let format = Format.Kind(rawValue: name) else { throw WireError("unknown output format '\(name)'") }
                kind = .image(format)
            } else {
                kind = .json
            }
            let width = try reader.int(), height = try reader.int(), frames = try reader.int(), decoded = try reader.int()
            self = .output(RenderOutput(kind: kind, bytes: try reader.bytes(), width: width, height: height,
                                        frames: frames, decodedPixels: decoded))
        } else {
            self = .failure(try ProcessError.read(from: &reader))
        }
        guard reader.atEnd else { throw WireError("a render reply has bytes after its fields") }
    }
}

/// The worker's first frame: who it is, so a worker from another build is refused at once.
/// Started with `--describe`, the worker also sends its full `EngineReport` and exits.
struct WorkerHello {
    /// `Engine.version` inside the worker (render version and every codec library's version):
    /// outputs are recorded with the version derive planned with, so both must agree.
    var engineVersion: String
    var report: EngineReport?

    func encoded() -> Data {
        var writer = WireWriter()
        writer.string(engineVersion)
        writer.optionalString(report.flatMap { try? JSONEncoder().encode($0) }.map { String(decoding: $0, as: UTF8.self) })
        return writer.data
    }

    init(engineVersion: String, report: EngineReport? = nil) {
        self.engineVersion = engineVersion
        self.report = report
    }

    init(_ payload: Data) throws {
        var reader = WireReader(payload)
        engineVersion = try reader.string()
        if let text = try reader.optionalString() {
            do { report = try JSONDecoder().decode(EngineReport.self, from: Data(text.utf8)) } catch {
                throw WireError("the worker's engine report cannot be read: \(error)")
            }
        }
        guard reader.atEnd else { throw WireError("a hello has bytes after its fields") }
    }
}

extension ProcessError {
    func write(to writer: inout WireWriter) {
        writer.string(code.rawValue)
        writer.optionalString(ec)
        writer.string(message)
        writer.optionalString(action)
        writer.optionalString(parameter)
        writer.optionalInt(offset)
        writer.optionalString(hint)
    }

    static func read(from reader: inout WireReader) throws -> ProcessError {
        let name = try reader.string()
        guard let code = Code(rawValue: name) else { throw WireError("unknown error code '\(name)'") }
        let ec = try reader.optionalString()
        let message = try reader.string()
        return ProcessError(code, ec: ec, message, action: try reader.optionalString(), parameter: try reader.optionalString(),
                            offset: try reader.optionalInt(), hint: try reader.optionalString())
    }
}
