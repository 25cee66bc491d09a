import Foundation
import Testing
import TestSupport

/// Attack round 23's static L1/L4: `derive sign` signed keys serve can never answer (`..`, `.`,
/// empty segments, control characters) and URLs that were dead on arrival (`--expires 0` or
/// negative), printing them with exit 0 as if they worked.
@Suite(.ownThreads) struct SignBoundsTests {
    func project() throws -> URL {
        let folder = try CLI.temporaryFolder()
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("photos"), withIntermediateDirectories: true)
        try Data("""
        version: 1
        access_keys:
          - id: AKIDTEST
            secret_env: DERIVE_TEST_SIGN_SECRET
        buckets:
          photos:
            path: photos
        """.utf8).write(to: folder.appendingPathComponent("derive.yaml"))
        return folder
    }

    let environment = ["DERIVE_TEST_SIGN_SECRET": "s3cret"]

    @Test func keysServeWouldRefuseAreNotSigned() throws {
        let folder = try project()
        defer { try? FileManager.default.removeItem(at: folder) }
        for (key, why) in [("../derive.yaml", "'.' or '..' segment"), ("a/./b.jpg", "'.' or '..' segment"), ("a//b.jpg", "empty segment"),
                           ("a/", "ends with '/'"), ("a\u{1}b.jpg", "control character")] {
            let result = try CLI.run(["sign", "photos/" + key], in: folder, environment: environment)
            #expect(result.status == 1, "\(key): \(result.stdout.count) bytes out, \(result.stderr)")
            #expect(result.stdout.isEmpty, "\(key)")
            #expect(result.stderr.contains(why), "\(key): \(result.stderr)")
        }
    }

    @Test func lifetimesThatAreDeadOnArrivalAreRefused() throws {
        let folder = try project()
        defer { try? FileManager.default.removeItem(at: folder) }
        for lifetime in ["0", "-60"] {
            for v4 in [false, true] {
                let result = try CLI.run(["sign", "photos/a.jpg", "--expires=\(lifetime)"] + (v4 ? ["--v4"] : []), in: folder, environment: environment)
                #expect(result.status != 0 && result.stdout.isEmpty, "\(lifetime) v4=\(v4)")
                #expect(result.stderr.contains("--expires"), "\(lifetime): \(result.stderr)")
            }
        }
        let fine = try CLI.run(["sign", "photos/a.jpg", "--expires", "1"], in: folder, environment: environment)
        #expect(fine.status == 0, "\(fine.stderr)")
    }
}
