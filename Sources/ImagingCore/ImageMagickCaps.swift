/// ImageMagick's resource caps in a render worker (its environment, set by `RenderWorkers`):
/// below Debian's policy.xml (256 MiB memory, 1 GiB disk, 16 000 px a side, which policy.xml
/// also sets: an environment value cannot raise them). BMP sources are costed from their own
/// header before ImageMagick runs, so these only back the estimate up, until a user raises
/// the memory limit past them: then they decide, and the engine names them in its refusal.
public enum ImageMagickCaps {
    public static let environment: [String: String] = [
        "MAGICK_MEMORY_LIMIT": "256MiB",
        "MAGICK_MAP_LIMIT": "512MiB",
        "MAGICK_DISK_LIMIT": "1GiB",
        "MAGICK_AREA_LIMIT": "128MP",
        "MAGICK_WIDTH_LIMIT": "16000",
        "MAGICK_HEIGHT_LIMIT": "16000",
        "MAGICK_THREAD_LIMIT": "1",
    ]

    /// The caps that bound ImageMagick's pixel cache, for messages.
    public static var cacheDescription: String {
        ["MAGICK_MEMORY_LIMIT", "MAGICK_MAP_LIMIT", "MAGICK_DISK_LIMIT", "MAGICK_AREA_LIMIT"]
            .map { "\($0)=\(environment[$0] ?? "")" }.joined(separator: ", ")
    }
}
