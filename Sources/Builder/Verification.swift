import Confinement
import Foundation
import Manifest
import Planner

/// What `--verify` found: outputs are deterministic, so an output whose file holds what its rule
/// renders from its source now is proven, whatever vouched for it (a fresh clone's lock line).
public struct Verification: Sendable {
    public struct Mismatch: Sendable {
        /// `bucket/key` of the output.
        public var output: String
        /// Why the file is not what the build writes: `differs from what rule 'r' renders from src/x.jpg`.
        public var message: String
        /// `out/x.webp  differs from …`, as `check` prints it.
        public var line: String { "\(output)  \(message)" }
    }

    /// Outputs rendered again whose file held exactly the rendered bytes.
    public var verified: [String] = []
    public var mismatches: [Mismatch] = []
    /// Outputs that could not be rendered again (full messages): not verified.
    public var failures: [(output: String, message: String)] = []
    public var seconds: Double = 0

    public init() {}

    /// The outputs `--verify` renders again in `plan`: those only a lock line vouches for (adopted
    /// now, or by an earlier plain build and still marked so), or every up-to-date output with
    /// `all`. Outputs the plan renders anyway are not verified (they are written from a render).
    public static func candidates(_ plan: Plan, all: Bool) -> [PlanItem] {
        plan.items.filter { $0.isUnverifiedAdoption || (all && $0.kind == .upToDate && $0.derivative != nil) }
    }

    /// What a mismatch says about `derivative`'s file.
    public static func message(_ derivative: Derivative) -> String {
        "differs from what \(RuleName.described(derivative.rule)) renders from \(derivative.source)"
    }
}

extension Builder {
    /// Renders each of `items` again (as a build does: its source read and checked against the
    /// plan, on the build's workers within the memory budget and each rule's output budget, in
    /// parallel over `options.jobs`) and compares the bytes with the output's file, writing nothing.
    public func verify(_ items: [PlanItem]) -> Verification {
        let started = Date()
        var verification = Verification()
        let progress = Progress(total: items.count, quiet: options.quiet, verb: "verified")
        let digests = planner.digests
        let results = parallel(items, progress: progress, finished: { (result: Result<Bool, Error>) -> Progress.Outcome? in
            if case .success(true) = result { return .built } else { return .notBuilt(sourceChanged: false) }
        }) { item, budget in
            let (planned, _, rendered) = try self.render(item, budget: budget)
            // The file as it is now (its digest through the plan's cache: one read at most).
            return try digests.content(of: planned.outputPath)?.digest == rendered
        }
        for (item, result) in zip(items, results) {
            switch result {
            case .success(true): verification.verified.append(item.output)
            case .success(false):
                guard let derivative = item.derivative else { continue }
                verification.mismatches.append(.init(output: item.output, message: Verification.message(derivative)))
            case .failure(let error as SourceChanged):
                // Read now, the source is not what the plan took it for: edited meanwhile, or other
                // bytes under the stat the cache knows (attack 20's B2: a plain build trusts that
                // stat again; `build --verify` reads every source again).
                verification.failures.append((item.output, "could not be rendered again to verify it: \(error.source) does not hold the bytes the plan used "
                                              + "(changed since, or other bytes under the same size and times); run derive build --verify, which reads every source again"))
            case .failure(let error):
                verification.failures.append((item.output, "could not be rendered again to verify it: \(error)"))
            }
        }
        verification.seconds = Date().timeIntervalSince(started)
        return verification
    }
}

/// What proving the files of outputs adopted from the lock unverified found, before a build
/// replaces or deletes them, or `clean` removes them (issue 13's finding 1).
public struct AdoptedProof: Sendable {
    /// Outputs whose file holds exactly what their record's recipe renders from their source.
    public var proven: [String] = []
    /// The others, output → why the file is not taken as Derive's (`Planner.distrusted`'s words).
    public var distrusted: [(output: String, reason: String)] = []
    /// Those of `proven` whose recipe could not be rendered again, proven by git instead: the
    /// file is committed as it is at HEAD (`GitProof`).
    public var provenByGit: [String] = []
    public var seconds: Double = 0

    public init() {}

    /// The lead of every reason: what the mark means.
    static let adopted = Planner.adoptedUnverifiedLead

    /// Whether `record`'s file is one a build or `clean` may replace or delete only once proven:
    /// adopted on a lock line's word, and still holding the bytes that line gave (a file that
    /// holds others is already not Derive's, and handled as such).
    public static func needsProof(_ record: OutputRecord, digests: ContentDigests) -> Bool {
        Planner.needsProof(record, digests: digests)
    }

    /// What plan says of an output whose file the build proves before replacing or deleting it.
    public static func planNote(replacing: Bool) -> String {
        "adopted from derive.lock unverified: the build first renders what it was recorded from, and \(replacing ? "replaces" : "deletes") "
            + "the file only if it holds exactly those bytes, or, when that cannot be rendered again, only if it is committed to git "
            + "as it is at HEAD (otherwise it is kept as yours)"
    }

    /// What a build's reasons say of an output adopted unverified whose recipe could not be
    /// rendered again and that git proved.
    public static let gitNote = "adopted from derive.lock unverified, and what it was recorded from cannot be rendered again, "
        + "but the file is committed to git as it is at HEAD (proven Derive's by git)"

}

extension Builder {
    /// Renders again what each of `records` was built from (`Derivative.recorded`: its recorded
    /// pipeline and source digest, not today's rule), as `--verify` renders (the build's workers,
    /// memory budget, deadline and output budgets), and compares the bytes with its file. A file
    /// that holds them is Derive's output; one that does not, or one whose recipe cannot be
    /// rendered again (its source changed since, its bucket or pipeline gone), is not provably
    /// Derive's and is treated as the user's.
    public func proveAdopted(_ records: [OutputRecord]) -> AdoptedProof {
        var proof = AdoptedProof()
        var items: [PlanItem] = []
        // Those git may have to prove, asked about at once.
        planner.gitProof.prefetch(records.map(\.file))
        for record in records {
            // What cannot be rendered again is decided as plan decides it (`Planner.adoptedRecipe`).
            switch planner.adoptedRecipe(record) {
            case .renderable(let derivative):
                items.append(PlanItem(kind: .upToDate, output: record.path, reasons: [], derivative: derivative, recorded: record, adopted: nil))
            case .provenByGit:
                proof.proven.append(record.path)
                proof.provenByGit.append(record.path)
            case .unprovable(let why):
                proof.distrusted.append((record.path, why))
            }
        }
        let found = items.isEmpty ? Verification() : verify(items)
        proof.proven += found.verified
        proof.seconds = found.seconds
        for mismatch in found.mismatches {
            proof.distrusted.append((mismatch.output, "\(AdoptedProof.adopted), and it \(mismatch.message) with the recipe it was recorded with "
                                     + "(rendered again before replacing or deleting it)"))
        }
        for (output, message) in found.failures {
            if let record = records.first(where: { $0.path == output }), planner.gitProof.proves(record.file, digest: record.outputDigest) {
                proof.proven.append(output)
                proof.provenByGit.append(output)
                continue
            }
            proof.distrusted.append((output, "\(AdoptedProof.adopted), and cannot be proven Derive's: it \(message)"))
        }
        return proof
    }
}
