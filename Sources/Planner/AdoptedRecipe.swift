import Foundation
import Manifest

/// What can be known, before anything is rendered, of the file of an output adopted from the
/// lock unverified that a build would replace or delete (issue 13's finding 1): one decision for
/// the build (`Builder.proveAdopted`, which renders the renderable ones) and for the plan, which
/// renders nothing but says the same verdict for the others (attack 37a's M3: plan said
/// "rebuild" with no error, and the build then refused the file and built nothing).
public enum AdoptedRecipe: Sendable {
    /// What it was recorded from can be rendered again: only a render decides (by the build).
    case renderable(Derivative)
    /// It cannot (its source changed since, or its rule or bucket is gone), but git holds the
    /// file as it is at HEAD (`GitProof`): Derive's.
    case provenByGit
    /// It cannot, and git does not hold it: the user's, for this reason (`Planner.distrusted`'s words).
    case unprovable(String)
}

extension Planner {
    /// The lead of every reason an adopted file is not taken as Derive's: what the mark means.
    public static let adoptedUnverifiedLead = "it was adopted from derive.lock unverified"

    /// What `record`'s file (adopted unverified) is, as far as can be said without rendering.
    /// Ask `gitProof.prefetch` first for many records: git is asked once for all of them.
    public func adoptedRecipe(_ record: OutputRecord) -> AdoptedRecipe {
        let inGit = { self.gitProof.proves(record.file, digest: record.outputDigest) }
        let unproven = { self.gitProof.whyUnproven(record.file).replacingOccurrences(of: "it is", with: "the file is", options: .anchored) }
        guard let derivative = Derivative.recorded(record, in: manifest) else {
            if inGit() { return .provenByGit }
            return .unprovable("\(Self.adoptedUnverifiedLead), and cannot be proven Derive's: what it was recorded from "
                               + "(\(RuleName.described(record.rule)) on \(record.source)) can no longer be rendered, and \(unproven())")
        }
        // Its source must still hold the recorded bytes (read through the plan's cache).
        guard (try? digests.content(of: derivative.sourcePath))?.digest == record.sourceDigest else {
            if inGit() { return .provenByGit }
            return .unprovable("\(Self.adoptedUnverifiedLead), and cannot be proven Derive's: \(record.source) changed since "
                               + "(or is gone), so what it was built from cannot be rendered again, and \(unproven())")
        }
        return .renderable(derivative)
    }
}
