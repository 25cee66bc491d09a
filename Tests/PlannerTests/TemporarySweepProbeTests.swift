import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import TestSupport
@testable import Builder
import Planner

/// Issue 15: the sweep of killed commands' temporaries (which `plan` lists and `build` removes)
/// first lists the folders' names alone, and works out every output's name and digests only
/// when some folder holds a name of a temporary's shape. Both ways must find exactly the same
/// files, with and without temporaries of every kind about.
@Suite(.ownThreads, .serialized) struct TemporarySweepProbeTests {
    @Test(arguments: ["none", "Derive's bytes for an output", "a user's file at an output's temporary name",
                      "a live writer's", "a name no output has", "Derive's, in a folder below", "the lock's"])
    func theProbedSweepFindsWhatTheFullSweepFinds(left: String) throws {
        let project = try Project(siteManifest, files: ["photos/a.jpg": "A", "photos/b.jpg": "B", "photos/trip/c.jpg": "C"])
        try project.build()
        func copy(_ from: String, _ to: String) throws { try FileManager.default.copyItem(atPath: project.path(from), toPath: project.path(to)) }
        var expected = 0
        switch left {
        case "Derive's bytes for an output": try copy("site/a.thumb.jpg", "site/.a.thumb.jpg.999999999.7.derive-tmp"); expected = 1
        case "a user's file at an output's temporary name": try project.write("site/.a.thumb.jpg.999999999.7.derive-tmp", "the user's draft")
        case "a live writer's": try copy("site/a.thumb.jpg", "site/.a.thumb.jpg.\(getpid()).7.derive-tmp")
        case "a name no output has": try project.write("site/.notes.txt.999999999.7.derive-tmp", "mine")
        case "Derive's, in a folder below": try copy("site/trip/c.thumb.jpg", "site/trip/.c.thumb.jpg.999999999.8.derive-tmp"); expected = 1
        case "the lock's": try copy("derive.lock", ".derive.lock.999999999.9.derive-tmp"); expected = 1
        default: break
        }
        let session = try project.session()
        let planner = try session.planner()
        let plan = try planner.plan()
        let probed = try Builder.sweepTemporaries(plan, planner: planner, store: planner.store, listOnly: true)
        let full = try Builder.sweepTemporaries(plan, planner: planner, store: planner.store, listOnly: true, probe: false)
        #expect(probed == full, "\(left): probed \(probed), full \(full)")
        #expect(probed.count == expected, "\(left): \(probed)")
        // And the probe itself: a folder with such a name may hold one, a folder without may not.
        let site = project.path("site")
        #expect(planner.disk.mayHoldTemporaries(in: site) == ["Derive's bytes for an output", "a user's file at an output's temporary name",
                                                             "a live writer's", "a name no output has"].contains(left), "\(left)")
    }
}
