import ProcessLanguage

extension Watermark: FrameDrawing {
    /// Drawing watermarks is its own piece of work (the watermark issue); until it lands the
    /// action is parsed and validated but refused at render time with a clear message.
    func draw(_ image: VImage, _ context: DrawContext) throws -> VImage {
        throw ProcessError(.badRequest, "watermark: drawing watermarks is not available in this version of Derive",
                           action: Self.name)
    }
}
