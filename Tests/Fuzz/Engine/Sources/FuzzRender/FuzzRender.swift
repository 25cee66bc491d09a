import Foundation
import Imaging
import ProcessLanguage

/// Chains the render target applies; the first input byte picks one, the rest is the image.
let chains = [
    "image/resize,w_20", "image/format,png", "image/format,webp", "image/crop,w_10,h_10,g_center/rotate,90",
    "image/resize,m_pad,w_30,h_30/circle,r_10/format,png", "image/blur,r_3,s_2/sharpen,100/format,jpg",
    "image/watermark,text_SGk,size_10/bright,10/contrast,-10", "image/info", "image/average-hue",
    "image/auto-orient,0/indexcrop,x_5,i_1/format,gif", "image/rounded-corners,r_4/format,avif/quality,q_50",
    "image/resize,p_50/format,tiff", "image/format,bmp", "image/format,heic",
].map { try! Pipeline.parse($0) }

/// Small limits keep every execution short (a mutated header claiming a big image is refused
/// before decoding): at most 64 K pixels and about 30 ms of estimated work; a deadline catches
/// runaway work the estimate misses.
let engine = Engine(limits: Limits(maxBytes: 64 << 10, maxSide: 512, maxPixels: 65_536, renderSeconds: 2,
                                   maxWork: 30_000_000, maxMemory: 32 << 20))

/// Mutated image bytes of every source format through Engine.render: any input ends in an
/// image or a ProcessError, never a crash, a hang or a leak the sanitizer sees.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRender(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size >= 2 else { return 0 }
    let pipeline = chains[Int(data[0]) % chains.count]
    let image = Data(bytes: data + 1, count: size - 1)
    do {
        let output = try engine.render(image, pipeline)
        if case .image = output.kind, output.bytes.isEmpty { fatalError("an empty image for \(pipeline)") }
    } catch is ProcessError {
    } catch {
        fatalError("a non-ProcessError error: \(error)")
    }
    return 0
}
