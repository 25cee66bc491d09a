import CVipsShim
import Foundation
import ProcessLanguage
import Synchronization

/// A handle that stops a render from another thread, e.g. when a server's client disconnects.
/// Cancelling makes libvips stop evaluating at its next tile; the render then throws
/// `ProcessError` `RequestTimeout` ("the render was cancelled"). One handle may serve several
/// renders; cancelling is permanent.
public final class RenderCancellation: Sendable {
    private struct State {
        var cancelled = false
        var watches: [ObjectIdentifier: RenderWatch] = [:]
    }
    private let state = Mutex(State())

    public init() {}

    public func cancel() {
        let watches = state.withLock { state -> [RenderWatch] in
            state.cancelled = true
            return Array(state.watches.values)
        }
        for watch in watches { watch.cancel() }
    }

    public var isCancelled: Bool { state.withLock { $0.cancelled } }

    func register(_ watch: RenderWatch) {
        let cancelled = state.withLock { state -> Bool in
            state.watches[ObjectIdentifier(watch)] = watch
            return state.cancelled
        }
        if cancelled { watch.cancel() }
    }

    func unregister(_ watch: RenderWatch) {
        _ = state.withLock { $0.watches.removeValue(forKey: ObjectIdentifier(watch)) }
    }
}

/// The deadline and cancellation flag of one render, shared with libvips (see `dv_watch_*`):
/// every image made on the rendering thread while the watch is current is watched.
final class RenderWatch: @unchecked Sendable {
    private let pointer: OpaquePointer
    let limits: Limits

    init(limits: Limits) {
        self.limits = limits
        pointer = dv_watch_new(limits.renderSeconds)
    }

    deinit { dv_watch_unref(pointer) }

    func cancel() { dv_watch_cancel(pointer) }

    /// The error to throw when the watch has fired, nil while it has not.
    var failure: ProcessError? {
        Self.error(for: dv_watch_state(pointer), limits: limits)
    }

    static func error(for state: Int32, limits: Limits) -> ProcessError? {
        switch state {
        case 1: return .renderDeadline(limits)
        case 2: return .renderCancelled
        default: return nil
        }
    }

    static func format(_ seconds: Double) -> String {
        seconds == seconds.rounded() && abs(seconds) < 1e15 ? String(Int(seconds)) : String(seconds)
    }

    /// Runs `body` with this watch current on the calling thread. A failure after the watch
    /// fired becomes the deadline or cancellation error, whatever libvips said.
    func during<T>(_ body: () throws -> T) throws -> T {
        dv_watch_set_current(pointer)
        defer { dv_watch_set_current(nil) }
        do {
            let result = try body()
            if let failure { throw failure }
            return result
        } catch {
            if let failure { Vips.takeError(); throw failure }
            throw error
        }
    }

    /// Throws when the current thread's render is past its deadline or cancelled (between steps).
    static func checkCurrent(_ limits: Limits) throws {
        if let failure = error(for: dv_watch_current_state(), limits: limits) { throw failure }
    }
}

extension ProcessError {
    /// A render stopped at its deadline, in the engine or by killing its render worker; the
    /// message names what raises it where the limits were set (the flag of `derive process`,
    /// the manifest's `limits: render_seconds` for `derive build` and `serve`).
    public static func renderDeadline(_ limits: Limits) -> ProcessError {
        ProcessError(.requestTimeout,
                     "the render took longer than its deadline of \(RenderWatch.format(limits.renderSeconds)) s and was stopped (raise it with \(limits.setting("render_seconds")))")
    }

    /// A render stopped because its `RenderCancellation` was cancelled.
    public static let renderCancelled = ProcessError(.requestTimeout, "the render was cancelled")
}
