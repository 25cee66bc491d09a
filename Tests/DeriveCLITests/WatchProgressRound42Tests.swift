import Foundation
import Testing
import TestSupport
@testable import Builder

/// Attack 42b's L-a: while a watch built, a source saved meanwhile made its outputs count as
/// failed on the progress lines ("built 47/191, 10 failed") though the watch builds them again at
/// once and its summary names no failure. In a watch they are counted apart; a one-shot build
/// still counts them failed, as its summary does ("run the build again").
@Suite(.ownThreads) struct WatchProgressRound42Tests {
    struct Undecodable: Error {}

    static func counted(watching: Bool) -> (built: Int, failed: Int, again: Int) {
        let progress = Progress(total: 4, quiet: true, watching: watching)
        progress.finished("site/a-1.jpg", .built)
        progress.finished("site/b-1.jpg", .failed(SourceChanged(source: "photos/b.jpg")))
        progress.finished("site/b-2.jpg", .failed(SourceChanged(source: "photos/b.jpg")))
        progress.finished("site/c-1.jpg", .failed(Undecodable()))
        return progress.counts
    }

    @Test func aSourceSavedWhileAWatchBuildsIsNotCountedFailed() {
        let watch = Self.counted(watching: true)
        #expect(watch.built == 1 && watch.failed == 1 && watch.again == 2, "\(watch)")
        let once = Self.counted(watching: false)
        #expect(once.built == 1 && once.failed == 3 && once.again == 0, "\(once)")
        #expect(Progress.line(verb: "built", done: 4, total: 4, failed: 1, again: 2) == "built 1/4, 1 failed, 2 to build again (source changed)\n")
        #expect(Progress.line(verb: "built", done: 2, total: 4, failed: 0, again: 0) == "built 2/4\n")
        #expect(Progress.line(verb: "verified", done: 3, total: 3, failed: 1, again: 0) == "verified 2/3, 1 not verified\n")
    }
}
