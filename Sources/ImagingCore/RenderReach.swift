/// How far a render goes. `derive init` asks how the first build would judge a source: the
/// same render, stopped before the first pixel is decoded, so it refuses exactly what the
/// build's header, limit, work and whole-file checks refuse (attack 36a's M1).
public enum RenderReach: UInt8, Sendable {
    /// Decoded, drawn and encoded: the output.
    case output = 0
    /// Every check made before decoding, the whole-file data checks included (a JPEG's entropy
    /// data, a still GIF's every frame); the output is empty.
    case checks = 1
    /// The same without the JPEG entropy-data check, which depends on the source alone: for the
    /// source's other chains, once `checks` passed on one. (The every-frame check of a GIF made
    /// a still depends on the chain: it is made.)
    case limitChecks = 2
}
