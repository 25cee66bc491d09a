import Confinement
import NIOConcurrencyHelpers

/// Points inside operations where tests run code, to make a race happen every time rather
/// than under load only. All empty in `derive serve` (one lock and a nil check each).
final class ServiceHooks: Sendable {
    typealias KeyHook = @Sendable (ObjectKey) -> Void
    /// A read opened the object's file and has not looked its metadata record up yet.
    let openedForReading = NIOLockedValueBox<KeyHook?>(nil)
    /// A delete removed the file and has not forgotten its records yet.
    let removedForDelete = NIOLockedValueBox<KeyHook?>(nil)

    /// A listing was admitted and has not started its walk.
    let listingAdmitted = NIOLockedValueBox<(@Sendable () -> Void)?>(nil)

    func run(_ hook: NIOLockedValueBox<(@Sendable () -> Void)?>) {
        if let hook = hook.withLockedValue({ $0 }) { hook() }
    }

    func run(_ hook: NIOLockedValueBox<KeyHook?>, _ key: ObjectKey) {
        if let hook = hook.withLockedValue({ $0 }) { hook(key) }
    }
}
