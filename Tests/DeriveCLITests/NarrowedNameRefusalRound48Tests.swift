import Foundation
import Testing
import TestSupport

/// Attack 48's F5: derive.yaml narrowed `w=960` of an 800 px source to `a-800.webp`; hero.yaml,
/// added beside it, writes that name, and its build was refused advising only a bucket folder of
/// its own or --overwrite. Building derive.yaml first gives the name up (it now sees the hero's
/// rule): the refusal says so, naming the manifest and the command, and that order builds both.
@Suite(.ownThreads) struct NarrowedNameRefusalRound48Tests {
    typealias Site = SiteRound11Tests.Site

    @Test func theRefusalSaysToBuildTheSiblingFirst() throws {
        let site = try Site(["images/a.jpg": "portrait.jpg"],
                            manifest: NarrowedNameTakenRound46Tests.manifest(NarrowedNameTakenRound46Tests.widths, index: false))
        defer { site.remove() }
        let first = try site.run(["build"])
        #expect(first.status == 0 && site.files("site") == ["a-480.webp", "a-800.webp"], "\(said(first))")
        try Data(NarrowedNameTakenRound46Tests.manifest(NarrowedNameTakenRound46Tests.hero, index: false).utf8).write(to: site.url("hero.yaml"))
        let refused = try site.run(["build", "hero.yaml"])
        #expect(refused.status != 0, "\(said(refused))")
        #expect(said(refused).contains("site/a-800.webp is an output of") && said(refused).contains("if derive.yaml gave that name to a narrower source's width "
            + "and this manifest's rule writes it, build derive.yaml first (derive build derive.yaml): it then plans that width under its name as written "
            + "and gives the file up; otherwise give this manifest a bucket folder of its own, or pass --overwrite"), "\(said(refused))")
        for arguments in [["build"], ["build", "hero.yaml"]] {
            let build = try site.run(arguments)
            #expect(build.status == 0, "\(arguments): \(said(build))")
        }
        #expect(try NarrowedNameTakenRound46Tests.widths(site) == ["a-480.webp": 480, "a-800.webp": 800, "a-960.webp": 800])
    }
}
