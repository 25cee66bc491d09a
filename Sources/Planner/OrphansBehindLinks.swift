/// An old output (one the manifest no longer produces) whose path leads through a symbolic link
/// (round 30's F3). Derive never deletes through a link, and keeps its record so that it deletes
/// its own file once the link is gone (the link may be there only for a moment: attack 17's N6).
/// While the link stays, nothing is to do: it is no deletion and no pending work (plan, check and
/// the no-op build say the tree is up to date; the lock and the index keep its line), only named
/// as kept whenever a plan is made. The no-op witness keeps `link` (`NoOpWitness`'s links), so
/// removing or replacing the link makes the next run plan, and then delete.
public struct OrphanBehindLink: Sendable, Hashable {
    /// `bucket/key` of the old output.
    public var output: String
    /// The file Derive wrote there, and the first link on its path.
    public var file: String
    public var link: String
    /// `kept: …`: why it stays and what happens when the link goes.
    public var message: String

    /// `= out/t/a.jpg  kept: …`: one line, as plan, build and check print it.
    public var line: String { "= \(output)  \(message)" }
}

extension OrphanBehindLink {
    /// The message for an old output's `file` behind `link`, paths named by `display`: one
    /// wording for the plan and the no-op witness's answer (`WitnessCheck.keptBehindLinks`).
    static func message(_ file: String, link: String, display: (String) -> String) -> String {
        "kept: \(display(file)) leads through a symbolic link (\(display(link))), which Derive does not follow: left in place, its record kept "
            + "(nothing to do while the link stays; once it is gone, the next build deletes Derive's file, or drops the record of a file no longer there)"
    }

    /// The message for an old output's `file` behind the mount point `mount`.
    static func message(_ file: String, mount: String, display: (String) -> String) -> String {
        "kept: \(display(file)) is behind a mount point (\(display(mount))), which Derive does not cross: left in place, its record kept "
            + "(nothing to do while the mount stays; once it is gone, the next build deletes Derive's file, or drops the record of a file no longer there)"
    }
}

extension Planner {
    /// The plan's message for an old output behind `link`.
    func behindLinkMessage(_ file: String, link: String) -> String {
        OrphanBehindLink.message(file, link: link, display: display)
    }

    /// The plan's message for an old output behind the mount point `mount`.
    func behindMountMessage(_ file: String, mount: String) -> String {
        OrphanBehindLink.message(file, mount: mount, display: display)
    }
}
