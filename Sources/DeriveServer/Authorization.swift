import Confinement
import Manifest
import ProcessLanguage

/// What the builder recorded about the outputs it wrote: the ACL a rule's `acl:` gave each one.
/// The CLI adapts the build's state store to it; tests give a dictionary.
public protocol RecordedOutputs: Sendable {
    /// The recorded ACL of the output `key` of `bucket`, or nil when that key is not a recorded
    /// output. A failed lookup throws, and the object is then treated as private.
    func recordedACL(bucket: String, key: String) throws -> BucketACL?

    /// The recorded output `key` of `bucket` with the rule (its plan name) and source
    /// (`bucket/key`) it was built by and from, or nil when that key is not a recorded output.
    /// Without them (`rule` nil) the recorded ACL stands alone.
    func recordedOutput(bucket: String, key: String) throws -> RecordedOutput?

    /// Whether `key` of `bucket` is (or may become) a derivative: a rule of the manifest may
    /// write it, or the lock lists it. Such a key is never written anonymously.
    func isDerivative(bucket: String, key: String) -> Bool

    /// Whether the lock lists `key` of `bucket` (asked for keys the state does not record: a
    /// line no rule's template gives is an output of a rule gone, private until a build).
    func lockLists(bucket: String, key: String) -> Bool

    /// The ACL a build left a file at `key` of `bucket` under (the lock's `left` line: an old
    /// output or old index it did not delete), nil when it left none there. The key is never
    /// answered more publicly, state or no state.
    func leftACL(bucket: String, key: String) -> BucketACL?

    /// Why `key` of `bucket` is another project's file that serve never replaces or deletes (an
    /// output another manifest's lock records, its manifest, lock, index or state: attack 42a's
    /// H1, H2), nil when it is none.
    func foreignOwner(bucket: String, key: String) -> String?

    /// Whether the file opened for `key` of `bucket`, with this device and inode, is another
    /// project's manifest, include, lock or a file of its state folder: never served, whatever
    /// key reaches it.
    func isForeignControlFile(bucket: String, key: String, device: UInt64, inode: UInt64) -> Bool

    /// Why an anonymous read of `key` of `bucket` is refused for another project's sake (its
    /// recorded output, that project nested in the bucket: round 45), for the server log; nil
    /// when it is not.
    func foreignReadNote(bucket: String, key: String) -> String?
}

extension RecordedOutputs {
    public func isDerivative(bucket: String, key: String) -> Bool { false }
    public func lockLists(bucket: String, key: String) -> Bool { false }
    public func leftACL(bucket: String, key: String) -> BucketACL? { nil }
    public func foreignOwner(bucket: String, key: String) -> String? { nil }
    public func isForeignControlFile(bucket: String, key: String, device: UInt64, inode: UInt64) -> Bool { false }
    public func foreignReadNote(bucket: String, key: String) -> String? { nil }

    public func recordedOutput(bucket: String, key: String) throws -> RecordedOutput? {
        try recordedACL(bucket: bucket, key: key).map { RecordedOutput(acl: $0, rule: nil, source: "") }
    }
}

/// What the build recorded of one output: its ACL, and the rule and source it came from. The
/// one definition is `EffectiveACL.Built`, which `EffectiveACL.of` weighs.
public typealias RecordedOutput = EffectiveACL.Built

/// No builder state (serving buckets nothing was built into).
public struct NoRecordedOutputs: RecordedOutputs {
    public init() {}
    public func recordedACL(bucket: String, key: String) -> BucketACL? { nil }
}

/// Who may read and write which object. One definition of the effective object ACL
/// (`EffectiveACL`, in the manifest's module: the build and the index guard use it too), used
/// for every object a request touches: the source, each watermark object, the save-as target,
/// the PUT target, each key of a listing, and a website's index and error documents.
struct Authorizer: Sendable {
    let recorded: any RecordedOutputs
    /// The manifest in force (serve reloads it when it changes).
    let manifest: Manifest?
    /// The manifest's rules' output templates, compiled once per manifest load.
    let acls: EffectiveACL?

    init(recorded: any RecordedOutputs, manifest: Manifest? = nil) {
        self.recorded = recorded
        self.manifest = manifest
        self.acls = manifest.map(EffectiveACL.init)
    }

    /// `EffectiveACL.of`: for a built output the more private of the ACL the build recorded and
    /// the one the manifest in force gives it (attack 17's N6); for any key a rule's output
    /// template can give, at most that rule's derivative ACL, recorded or not, state or no state
    /// (attack 18's F1/F1b: a private rule's output "left in place" by a build, its record gone,
    /// was served with its public bucket's ACL); a key only the lock names that no rule writes:
    /// private; else the bucket's object-ACL rules; and never more public than the ACL a build left
    /// a file at that key under (the lock's `left` lines: round 19's V1, V2). When the record cannot be read the object is
    /// private: failing closed never publishes a private output.
    func effectiveACL(_ bucket: Bucket, _ key: ObjectKey) -> BucketACL {
        do {
            let output = try recorded.recordedOutput(bucket: bucket.name, key: key.string)
            let left = recorded.leftACL(bucket: bucket.name, key: key.string)
            guard let acls else {
                let acl = output?.acl ?? bucket.effectiveACL(of: key.string)
                return left.map { .morePrivate(acl, $0) } ?? acl
            }
            let listed = output == nil && recorded.lockLists(bucket: bucket.name, key: key.string)
            return acls.of(bucket, key: key.string, built: output, lockListed: listed, left: left)
        } catch {
            return .private
        }
    }

    /// The value of `x-oss-object-acl` for the object: its own setting, `default` when it has none.
    /// A built output's, or a key a rule or the lock says is a derivative, is its effective ACL
    /// (the same definition as `effectiveACL`).
    func objectACLHeader(_ bucket: Bucket, _ key: ObjectKey) -> String {
        let own = bucket.objects.first { $0.match.matches(key.string) }?.acl
        let derivative = (try? recorded.recordedOutput(bucket: bucket.name, key: key.string)) != nil
            || !(acls?.writingRules(bucket: bucket.name, key: key.string).isEmpty ?? true)
        let effective = effectiveACL(bucket, key)
        if derivative || effective != (own?.resolved(bucket: bucket.acl) ?? bucket.acl) { return effective.rawValue }
        return own?.rawValue ?? "default"
    }

    /// A signed request (any valid key of the manifest) may read everything; an anonymous one
    /// what is public.
    func mayRead(_ bucket: Bucket, _ key: ObjectKey, caller: String?) -> Bool {
        caller != nil || effectiveACL(bucket, key).isPublic
    }

    /// Writing anonymously needs public-read-write on the object itself (spec §5.1: the object
    /// ACL wins over the bucket's), so a private object in a public-read-write bucket is safe.
    /// A built output is never written anonymously, whatever its ACL: the builder owns its bytes
    /// (an anonymous replacement would be served as the derivative and stall the next build).
    /// Nor is a key a rule may write or the lock lists, built or not, state or no state: an
    /// anonymous object there would block the next build or pose as the derivative.
    func mayWrite(_ bucket: Bucket, _ key: ObjectKey, caller: String?) -> Bool {
        if caller != nil { return true }
        if recorded.isDerivative(bucket: bucket.name, key: key.string) { return false }
        let recordedOutput: Bool
        do { recordedOutput = try recorded.recordedACL(bucket: bucket.name, key: key.string) != nil } catch { return false }
        return !recordedOutput && effectiveACL(bucket, key) == .publicReadWrite
    }

    /// The 403 of an object private only because no build state of this manifest vouches for it.
    static let noStateMessage = "You have no right to access this object: derive serve has no build state of this manifest (a fresh clone or a copied project, or a state it cannot read), so the objects Derive writes are private until `derive build` records them. Run derive build, or sign the request."

    func authorizeRead(_ bucket: Bucket, _ key: ObjectKey, caller: String?) throws {
        guard mayRead(bucket, key, caller: caller) else {
            // Private because the state cannot say its ACL (attack 40b's M3): the cause named,
            // without the server's paths. Only then: a key private whatever a state says (an
            // `objects:` rule, a private rule's output) gets OSS's usual answer (issue #13).
            if refusedForWantOfState(bucket, key) { throw OSSErrorBody.accessDenied(Self.noStateMessage) }
            var denied = OSSErrorBody.accessDenied()
            denied.logNote = recorded.foreignReadNote(bucket: bucket.name, key: key.string)
            throw denied
        }
    }

    /// Whether the missing (or unusable) build state is why anonymous readers may not read `key`:
    /// the state cannot be asked about it, and the manifest's ACLs, the lock's lines and the ACL a
    /// build left a file there under would make it public were no output record to say otherwise.
    func refusedForWantOfState(_ bucket: Bucket, _ key: ObjectKey) -> Bool {
        do {
            _ = try recorded.recordedOutput(bucket: bucket.name, key: key.string)
            return false
        } catch {}
        let left = recorded.leftACL(bucket: bucket.name, key: key.string)
        guard let acls else {
            let acl = bucket.effectiveACL(of: key.string)
            return (left.map { .morePrivate(acl, $0) } ?? acl).isPublic
        }
        let listed = recorded.lockLists(bucket: bucket.name, key: key.string)
        if acls.of(bucket, key: key.string, built: nil, lockListed: listed, left: left).isPublic { return true }
        // A lock line no rule's template gives may be a rule's output narrowed to its source's
        // width (`a-1200.webp` for `w: 9000`): a state would record it as that rule's, so the state
        // is why exactly when that rule's ACL is public (attack 42b's L-e: it was said "because of
        // bucket acl"; a private rule's such output is not the state's doing).
        guard listed, acls.writingRules(bucket: bucket.name, key: key.string).isEmpty,
              let narrowed = acls.narrowedOutputACL(bucket, key: key.string) else { return false }
        return (left.map { .morePrivate(narrowed, $0) } ?? narrowed).isPublic
    }

    func authorizeWrite(_ bucket: Bucket, _ key: ObjectKey, caller: String?) throws {
        guard mayWrite(bucket, key, caller: caller) else {
            throw OSSErrorBody.accessDenied("You have no right to write this object: its ACL is not public-read-write and the request is not signed.")
        }
    }

    /// Whether `derive build` owns the key: a recorded output, a key a rule may write, or one the
    /// lock lists (a failed lookup counts as owned). The object API never deletes or replaces
    /// such a key, whoever asks: the next build would find it changed or gone.
    func isBuildOwned(_ bucket: Bucket, _ key: ObjectKey) -> Bool {
        if recorded.isDerivative(bucket: bucket.name, key: key.string) { return true }
        do { return try recorded.recordedACL(bucket: bucket.name, key: key.string) != nil } catch { return true }
    }

    /// A delete or a replacement by the object API (DeleteObject, a copy target, a completed
    /// multipart upload, an append): the write ACL, and never a key the build owns.
    func authorizeReplace(_ bucket: Bucket, _ key: ObjectKey, caller: String?) throws {
        try authorizeWrite(bucket, key, caller: caller)
        try refuseOwned(bucket, key)
    }

    /// The object API never replaces or deletes a key the build owns, nor another project's file
    /// (`RecordedOutputs.foreignOwner`), whoever asks.
    func refuseOwned(_ bucket: Bucket, _ key: ObjectKey) throws {
        if let why = recorded.foreignOwner(bucket: bucket.name, key: key.string) {
            throw OSSErrorBody.accessDenied("'\(key)' \(why); two manifests never touch each other's files, so derive serve does not delete or replace it.")
        }
        guard !isBuildOwned(bucket, key) else { throw Self.ownedByBuild(key) }
    }

    static func ownedByBuild(_ key: ObjectKey) -> OSSErrorBody {
        OSSErrorBody.accessDenied("'\(key)' is an output of derive build (recorded, listed in the lock, or a key a rule of the manifest writes); derive build owns its bytes, so derive serve does not delete or replace it. Change the manifest and run derive build instead.")
    }

    /// Every watermark object of `pipeline`, authorised as a GET of it would be. A caller who may
    /// not read one gets exactly the answer of a missing object, so existence does not leak.
    func authorizeWatermarks(_ pipeline: Pipeline, bucket: Bucket, caller: String?, exists: (ObjectKey) -> Bool) throws -> [ObjectKey] {
        var keys: [ObjectKey] = []
        for case .object(let name) in pipeline.dependencies {
            guard let key = try? ObjectKey(name), mayRead(bucket, key, caller: caller), exists(key) else {
                throw Self.missingWatermark(name)
            }
            keys.append(key)
        }
        return keys
    }

    static func missingWatermark(_ name: String) -> ProcessError {
        ProcessError(.watermarkError, ec: "0040-00000024", "watermark: the object '\(name)' does not exist in the bucket",
                     action: "watermark", parameter: "image")
    }
}
