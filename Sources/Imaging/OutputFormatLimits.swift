import ProcessLanguage

extension Limits {
    /// Sizes an encoder cannot write, whatever the limits say (README, limits table), checked
    /// before encoding like WebP's 16 383: BMP is written by ImageMagick, which takes at most
    /// 16 000 px a side (policy.xml); HEIC's encoder (libheif with x265 at "ultrafast") refuses
    /// very long thin images: measured, 1×4500, 16×4500, 24×8193, 31×16000 and 8193×1 fail while
    /// 1×4097, 8×4200, 32×8193, 32×16383 and 9000×400 encode. Refused: a side under 32 px with
    /// the other over 4 096 (a few sizes just over 4 096 that would encode are refused too).
    func checkEncoder(width: Int, height: Int, format: Format.Kind) throws {
        switch format {
        case .bmp:
            let limit = LoaderFootprint.imageMagickMaxSide
            if width > limit || height > limit {
                throw ProcessError(.imageTooLarge, ec: "0040-00000007",
                                   "the result is \(width)x\(height); each side of a bmp output may be at most \(limit) px (ImageMagick, which writes BMP, takes no more; resize it first or choose another format)")
            }
        case .heic:
            if let problem = Self.heicSizeProblem(width: width, height: height) {
                throw ProcessError(.imageTooLarge, ec: "0040-00000007",
                                   "the result is \(width)x\(height); \(problem) (resize it or choose another format)")
            }
        default:
            break
        }
    }

    static func heicSizeProblem(width: Int, height: Int) -> String? {
        guard min(width, height) < heicMinShortSide, max(width, height) > heicMaxLongSideWhenThin else { return nil }
        return "a heic output with a side over \(heicMaxLongSideWhenThin) px needs the other side to be at least \(heicMinShortSide) px (the HEVC encoder refuses thinner images)"
    }

    static let heicMinShortSide = 32
    static let heicMaxLongSideWhenThin = 4096
}
