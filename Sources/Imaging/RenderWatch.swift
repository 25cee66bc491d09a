import CVipsShim
import Foundation
import ProcessLanguage

/// The deadline and cancellation flag of one render, shared with libvips (see `dv_watch_*`):
/// every image made on the rendering thread while the watch is current is watched.
final class RenderWatch: CancellableRender, @unchecked Sendable {
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

    static func format(_ seconds: Double) -> String { ProcessError.formatSeconds(seconds) }

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
            // Memory or ImageMagick's caps running out is a limit, never a corrupt source.
            if let processError = error as? ProcessError, let exhausted = ResourceExhaustion.error(for: processError, limits: limits) {
                throw exhausted
            }
            throw error
        }
    }

    /// Throws when the current thread's render is past its deadline or cancelled (between steps).
    static func checkCurrent(_ limits: Limits) throws {
        if let failure = error(for: dv_watch_current_state(), limits: limits) { throw failure }
    }
}
