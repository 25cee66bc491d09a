import Foundation
import ProcessLanguage
import Synchronization

/// Something a `RenderCancellation` stops: the engine's watch of one render (in Imaging).
package protocol CancellableRender: AnyObject, Sendable {
    func cancel()
}

/// A handle that stops a render from another thread, e.g. when a server's client disconnects.
/// Cancelling makes libvips stop evaluating at its next tile (in-process), or kills the render
/// worker (RenderWorkers); the render then throws `ProcessError` `RequestTimeout` ("the render
/// was cancelled"). One handle may serve several renders; cancelling is permanent.
public final class RenderCancellation: Sendable {
    private struct State {
        var cancelled = false
        var renders: [ObjectIdentifier: any CancellableRender] = [:]
    }
    private let state = Mutex(State())

    public init() {}

    public func cancel() {
        let renders = state.withLock { state -> [any CancellableRender] in
            state.cancelled = true
            return Array(state.renders.values)
        }
        for render in renders { render.cancel() }
    }

    public var isCancelled: Bool { state.withLock { $0.cancelled } }

    package func register(_ render: any CancellableRender) {
        let cancelled = state.withLock { state -> Bool in
            state.renders[ObjectIdentifier(render)] = render
            return state.cancelled
        }
        if cancelled { render.cancel() }
    }

    package func unregister(_ render: any CancellableRender) {
        _ = state.withLock { $0.renders.removeValue(forKey: ObjectIdentifier(render)) }
    }
}

extension ProcessError {
    /// A render stopped at its deadline, in the engine or by killing its render worker; the
    /// message names what raises it where the limits were set (the flag of `derive process`,
    /// the manifest's `limits: render_seconds` for `derive build` and `serve`).
    public static func renderDeadline(_ limits: Limits) -> ProcessError {
        ProcessError(.requestTimeout,
                     "the render took longer than its deadline of \(formatSeconds(limits.renderSeconds)) s and was stopped (raise it with \(limits.setting("render_seconds")))")
    }

    /// A render stopped because its `RenderCancellation` was cancelled.
    public static let renderCancelled = ProcessError(.requestTimeout, "the render was cancelled")

    /// `20`, `0.5`: whole seconds without a fraction.
    package static func formatSeconds(_ seconds: Double) -> String {
        seconds == seconds.rounded() && abs(seconds) < 1e15 ? String(Int(seconds)) : String(seconds)
    }
}
