import Foundation
import Testing
import TestSupport
@testable import ProcessLanguage

@Suite(.ownThreads) struct CanonicalFormTests {
    @Test(arguments: [
        ("image/resize,w_100", "image/resize,m_lfit,w_100,limit_1,color_FFFFFF"),
        ("image/resize,m_fill,h_80,w_150,color_00ff00", "image/resize,m_fill,w_150,h_80,limit_1,color_00FF00"),
        ("image/resize,p_50", "image/resize,m_lfit,p_50,limit_1,color_FFFFFF"),
        ("image/resize,l_300,s_200,limit_0", "image/resize,m_lfit,l_300,s_200,limit_0,color_FFFFFF"),
        ("image/crop,w_100,h_50,g_se", "image/crop,w_100,h_50,x_0,y_0,g_se"),
        ("image/crop,x_10", "image/crop,x_10,y_0,g_nw"),
        ("image/crop,w_0,h_0", "image/crop,x_0,y_0,g_nw"),
        ("image/indexcrop,x_100", "image/indexcrop,x_100,i_0"),
        ("image/indexcrop,x_100,y_50,i_2", "image/indexcrop,y_50,i_2"),
        ("image/circle,r_100", "image/circle,r_100"),
        ("image/rounded-corners,r_30", "image/rounded-corners,r_30"),
        ("image/auto-orient,1", "image/auto-orient,1"),
        ("image/rotate,360", "image/rotate,0"),
        ("image/rotate,90", "image/rotate,90"),
        ("image/blur,s_2,r_3", "image/blur,r_3,s_2"),
        ("image/bright,-50", "image/bright,-50"),
        ("image/contrast,30", "image/contrast,30"),
        ("image/sharpen,100", "image/sharpen,100"),
        ("image/interlace,1", "image/interlace,1"),
        ("image/quality,q_80", "image/quality,q_80"),
        ("image/quality,Q_90,q_50", "image/quality,Q_90"),
        ("image/quality,75", "image/quality,q_75"),
        ("image/format,jpeg", "image/format,jpg"),
        ("image/format,webp", "image/format,webp"),
        ("image/info", "image/info"),
        ("image/average-hue", "image/average-hue"),
        ("image/resize,w_100/rotate,90/format,png", "image/resize,m_lfit,w_100,limit_1,color_FFFFFF/rotate,90/format,png"),
        ("image/watermark,text_SGVsbG8", "image/watermark,t_100,g_se,x_10,y_10,voffset_0,fill_0,padx_0,pady_0,text_SGVsbG8,type_d3F5LXplbmhlaQ,color_000000,size_40,shadow_0,rotate_0"),
    ])
    func canonical(_ input: String, _ expected: String) throws {
        #expect(try Pipeline.parse(input).canonical == expected)
    }

    /// Generated spellings of the same recipe: parameters shuffled, defaults spelled out or left
    /// out, colours in either case, base64 padded or not and in either alphabet.
    @Test func equivalentSpellingsAreEqual() throws {
        var random = SeededRandom(seed: 42)
        let recipes: [[(String, String?)]] = [
            [("m", "lfit"), ("w", "120"), ("h", nil), ("limit", "1"), ("color", "FFFFFF")],
            [("m", "pad"), ("w", "120"), ("h", "80"), ("limit", "1"), ("color", "ffffff")],
            [("x", "0"), ("y", "0"), ("g", "nw"), ("w", "64"), ("h", "32")],
        ]
        let names = ["resize", "resize", "crop"]
        for (name, recipe) in zip(names, recipes) {
            let required = recipe.filter { ["w", "h", "m"].contains($0.0) && $0.1 != nil && !($0.0 == "m" && name == "resize" && $0.1 == "lfit") }
            var spellings: Set<String> = []
            for _ in 0..<60 {
                var items = recipe.compactMap { key, value -> String? in
                    guard let value else { return nil }
                    let isDefault = !required.contains { $0.0 == key }
                    if isDefault, Bool.random(using: &random) { return nil }
                    let cased = key == "color" && Bool.random(using: &random) ? value.lowercased() : value
                    return "\(key)_\(cased)"
                }
                items.shuffle(using: &random)
                spellings.insert("image/" + ([name] + items).joined(separator: ","))
            }
            let canonicals = Set(try spellings.map { try Pipeline.parse($0).canonical })
            #expect(spellings.count > 5)
            #expect(canonicals.count == 1, "\(name): \(canonicals)")
        }
        let text = "Hello, 世界 (watermark)"
        let standard = Data(text.utf8).base64EncodedString()
        let variants = [Base64URL.encode(text), standard, Base64URL.encode(text) + "==", standard.replacingOccurrences(of: "=", with: "")]
        let marks = Set(try variants.map { try Pipeline.parse("image/watermark,text_\($0)").canonical })
        #expect(marks.count == 1)
    }

    @Test func differentRecipesDiffer() throws {
        #expect(try Pipeline.parse("image/resize,w_100") != Pipeline.parse("image/resize,w_101"))
        #expect(try Pipeline.parse("image/quality,q_80") != Pipeline.parse("image/quality,Q_80"))
        #expect(try Pipeline.parse("image/resize,w_100/rotate,90") != Pipeline.parse("image/rotate,90/resize,w_100"))
    }
}

@Suite(.ownThreads) struct ErrorTests {
    /// Every process-string error of spec §4.4 that applies offline.
    @Test(arguments: [
        ("image/", ProcessError.Code.invalidArgument, "0040-00000212"),
        ("image/slim,1", .invalidArgument, "0040-00000213"),
        ("image/format,dng", .invalidArgument, "0040-00000206"),
        ("image/format", .missingArgument, "0040-00000207"),
        ("image/rotate", .missingArgument, "0040-00000216"),
        ("image/rotate,abc", .invalidArgument, "0040-00000217"),
        ("image/rotate,400", .invalidArgument, "0040-00000217"),
        ("image/crop,w_abc", .invalidArgument, "0040-00000225"),
        ("image/crop,w_-5", .invalidArgument, "0040-00000225"),
        ("image/crop,h_abc", .invalidArgument, "0040-00000226"),
        ("image/indexcrop,x_0", .invalidArgument, "0040-00000230"),
        ("image/indexcrop,y_0", .invalidArgument, "0040-00000230"),
        ("image/circle,r_abc", .invalidArgument, "0040-00000233"),
        ("image/circle,r_5000", .invalidArgument, "0040-00000233"),
        ("image/rounded-corners,r_abc", .invalidArgument, "0040-00000237"),
        ("image/rounded-corners,r_5000", .invalidArgument, "0040-00000237"),
        ("image/blur,r_abc,s_2", .invalidArgument, "0040-00000241"),
        ("image/blur,r_3,s_200", .invalidArgument, "0040-00000242"),
        ("image/blur,r_3,s_2,g_nose", .invalidArgument, "0004-00000243"),
        ("image/blur,r_3,s_2,g_face,p_300", .invalidArgument, "0004-00000244"),
        ("image/bright", .missingArgument, "0040-00000245"),
        ("image/bright,abc", .invalidArgument, "0040-00000246"),
        ("image/bright,200", .invalidArgument, "0040-00000246"),
        ("image/watermark,type_@@@,text_SGk", .invalidArgument, "0040-00000250"),
        ("image/watermark,text_@@@", .invalidArgument, "0040-00000257"),
        ("image/watermark,text_" + Base64URL.encode(String(repeating: "x", count: 65)), .invalidArgument, "0040-00000259"),
        ("image/watermark,text_SGk,t_200", .invalidArgument, "0040-00000263"),
        ("image/watermark,image_@@@", .invalidArgument, "0040-00000265"),
        ("image/watermark,text_SGk,voffset_2000", .invalidArgument, "0040-00000268"),
        ("image/watermark,text_SGk,rotate_400", .invalidArgument, "0040-00000272"),
        ("image/watermark,text_SGk,fill_2", .invalidArgument, "0040-00000274"),
        ("image/watermark,text_SGk,padx_5000", .invalidArgument, "0040-00000276"),
        ("image/sharpen", .missingArgument, "0040-00000279"),
        ("image/sharpen,10", .invalidArgument, "0040-00000280"),
        ("image/quality", .missingArgument, "0040-00000307"),
        ("image/quality,Q_200", .invalidArgument, "0040-00000308"),
        ("image/quality,q_200", .invalidArgument, "0040-00000309"),
        ("image/quality,200", .invalidArgument, "0040-00000310"),
        ("image/resize,m_abc,w_10", .invalidArgument, "0040-00000311"),
        ("image/resize,w_0", .invalidArgument, "0040-00000312"),
        ("image/resize,w_20000", .invalidArgument, "0040-00000312"),
        ("image/resize,s_0", .invalidArgument, "0040-00000315"),
        ("image/resize,p_0", .invalidArgument, "0040-00000317"),
        ("image/resize,p_1001", .invalidArgument, "0040-00000317"),
        ("image/resize,w_10,limit_3", .invalidArgument, "0040-00000319"),
        ("image/resize,w_0,h_0", .invalidArgument, "0040-00000321"),
        ("image/resize", .missingArgument, "0040-00000322"),
        ("image/resize,m_fixed", .missingArgument, "0040-00000322"),
        ("image/resize,m_fixed,w_5000,h_5000", .imageTooLarge, "0040-00000007"),
        ("image/watermark,image_" + Base64URL.encode("logo.png?x-oss-process=image/watermark,text_SGk"), .invalidArgument, "0040-00000373"),
    ])
    func errorCodes(_ input: String, _ code: ProcessError.Code, _ ec: String) throws {
        do {
            let pipeline = try Pipeline.parse(input)
            // Output limits need a size: the spec's example is for any source.
            for case .resize(let resize) in pipeline.actions {
                _ = try resize.geometry(sourceWidth: 1000, sourceHeight: 1000)
            }
            Issue.record("\(input) parsed without error")
        } catch let error as ProcessError {
            #expect(error.code == code, "\(input): \(error)")
            #expect(error.ec == ec, "\(input): \(error)")
            #expect(error.httpStatus == 400)
            #expect(error.action != nil || input == "image/", "\(input): the error names no action")
        }
    }

    @Test func messagesNameActionAndParameter() {
        #expect(throws: ProcessError.self) { try Pipeline.parse("image/resize,w_abc") }
        do {
            _ = try Pipeline.parse("image/resize,w_100/crop,h_abc")
        } catch let error as ProcessError {
            #expect(error.action == "crop")
            #expect(error.parameter == "h")
            #expect(error.message.contains("crop"))
            #expect(error.message.contains("'h'"))
            #expect(error.offset == 19)
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func unknownActionSuggestsTheClosest() {
        do {
            _ = try Pipeline.parse("image/rezise,w_100")
            Issue.record("parsed")
        } catch let error as ProcessError {
            #expect(error.hint == "did you mean 'resize'?")
            #expect(error.description.contains("did you mean 'resize'"))
            #expect(error.offset == 6)
        } catch { Issue.record("\(error)") }
    }

    @Test func unknownCategory() {
        #expect(throws: ProcessError.self) { try Pipeline.parse("video/snapshot,t_1000") }
    }

    @Test func thirdPartyActionsAreUnknown() {
        for name in ["flip", "gray", "ignore-error", "merge"] {
            #expect { try Pipeline.parse("image/\(name),1") } throws: { ($0 as? ProcessError)?.ec == "0040-00000213" }
        }
    }
}

@Suite(.ownThreads) struct WarningAndKeyTests {
    @Test func unknownKeyIsAWarning() throws {
        let pipeline = try Pipeline.parse("image/crop,w_100,h_100,x_100,y_100,r_1")
        #expect(pipeline.canonical == "image/crop,w_100,h_100,x_100,y_100,g_nw")
        #expect(pipeline.warnings.count == 1)
        #expect(pipeline.warnings.first?.parameter == "r")
    }

    @Test func keysAreCaseSensitive() throws {
        #expect(try Pipeline.parse("image/quality,Q_80").canonical == "image/quality,Q_80")
        #expect(try Pipeline.parse("image/quality,q_80").canonical == "image/quality,q_80")
        // P (percent of the main image) exists only in a watermark's pre-process.
        #expect(throws: ProcessError.self) { try Pipeline.parse("image/resize,P_30") }
        let mark = try Pipeline.parse("image/resize,P_30", context: .watermark)
        #expect(mark.canonical == "image/resize,m_lfit,P_30,limit_1,color_FFFFFF")
    }

    @Test func splitsAtTheFirstUnderscore() throws {
        // This key's base64url form contains "_", which must not split the item again.
        let key = "marks/10?.png?x-oss-process=image/resize,P_30"
        let encoded = Base64URL.encode(key)
        #expect(encoded.contains("_"))
        let pipeline = try Pipeline.parse("image/watermark,image_\(encoded)")
        guard case .watermark(let mark)? = pipeline.actions.first else { Issue.record("no watermark"); return }
        #expect(mark.image?.key == "marks/10?.png")
        #expect(mark.image?.process?.canonical == "image/resize,m_lfit,P_30,limit_1,color_FFFFFF")
        #expect(pipeline.dependencies == [.object(key: "marks/10?.png")])
    }

    @Test func lastValueWinsForARepeatedKey() throws {
        #expect(try Pipeline.parse("image/resize,w_100,w_200").canonical == Pipeline.parse("image/resize,w_200").canonical)
    }

    @Test func supersededParametersWarn() throws {
        let pipeline = try Pipeline.parse("image/resize,w_100,l_300")
        #expect(pipeline.canonical == "image/resize,m_lfit,w_100,limit_1,color_FFFFFF")
        #expect(pipeline.warnings.contains { $0.parameter == "l" })
    }

    @Test func textDependenciesNameTheFont() throws {
        let pipeline = try Pipeline.parse("image/watermark,text_SGk,type_" + Base64URL.encode("droidsansfallback"))
        #expect(pipeline.dependencies == [.font(name: "droidsansfallback", text: "Hi", size: 40)])
    }
}

@Suite(.ownThreads) struct StyleTests {
    let styles = ["thumb": "image/resize,m_fill,w_240,h_240/quality,q_82", "loop": "style/thumb"]

    @Test func styleExpands() throws {
        let pipeline = try Pipeline.parse("style/thumb", styles: styles)
        #expect(pipeline.style == "thumb")
        #expect(pipeline == (try Pipeline.parse("image/resize,m_fill,h_240,w_240/quality,q_82")))
    }

    @Test func missingStyleIs404() {
        #expect { try Pipeline.parse("style/nope", styles: styles) } throws: {
            ($0 as? ProcessError)?.code == .noSuchStyle && ($0 as? ProcessError)?.httpStatus == 404
        }
    }

    @Test func styleNamingAStyleIsAnError() {
        #expect { try Pipeline.parse("style/loop", styles: styles) } throws: {
            ($0 as? ProcessError)?.message.contains("names another style") == true
        }
    }

    @Test func badStyleName() {
        #expect { try Pipeline.parse("style/a b", styles: styles) } throws: { ($0 as? ProcessError)?.ec == "0017-00000251" }
        #expect(StyleName.isValid("thumb.v2_x-1"))
        #expect(!StyleName.isValid(String(repeating: "a", count: 64)))
    }
}

@Suite(.ownThreads) struct ResizeGeometryTests {
    /// The spec's worked example: a 200×100 source with w_150,h_80 in all five modes.
    @Test(arguments: [
        ("lfit", 150, 75, 150, 75),
        ("mfit", 160, 80, 160, 80),
        ("fill", 160, 80, 150, 80),
        ("pad", 150, 75, 150, 80),
        ("fixed", 150, 80, 150, 80),
    ])
    func workedExample(_ mode: String, _ sw: Int, _ sh: Int, _ w: Int, _ h: Int) throws {
        guard case .resize(let resize)? = try Pipeline.parse("image/resize,m_\(mode),w_150,h_80").actions.first else { return }
        let g = try resize.geometry(sourceWidth: 200, sourceHeight: 100)
        #expect(g.scaledWidth == sw && g.scaledHeight == sh, "\(mode): scaled \(g.scaledWidth)x\(g.scaledHeight)")
        #expect(g.width == w && g.height == h, "\(mode): final \(g.width)x\(g.height)")
    }

    @Test(arguments: [
        ("resize,w_100", 100, 50), ("resize,h_50", 100, 50), ("resize,m_fill,w_60", 60, 60),
        ("resize,m_pad,h_60", 60, 60), ("resize,m_fixed,w_60", 60, 60), ("resize,l_100", 100, 50),
        ("resize,s_50", 100, 50), ("resize,l_100,s_20", 40, 20), ("resize,m_fixed,l_100,s_20", 100, 20),
        ("resize,p_50", 100, 50), ("resize,p_200", 200, 100), ("resize,p_200,limit_0", 400, 200),
        ("resize,w_400", 200, 100), ("resize,w_400,limit_0", 400, 200), ("resize,m_pad,w_400,h_50,limit_0", 400, 50),
        // limit_1 keeps pad's canvas from growing past the source, as it keeps fixed from enlarging.
        ("resize,m_pad,w_400,h_50", 200, 100), ("resize,m_fixed,w_400,h_50", 200, 100),
    ])
    func geometry(_ process: String, _ w: Int, _ h: Int) throws {
        guard case .resize(let resize)? = try Pipeline.parse("image/" + process).actions.first else { return }
        let g = try resize.geometry(sourceWidth: 200, sourceHeight: 100)
        #expect(g.width == w && g.height == h, "\(process): \(g.width)x\(g.height)")
    }

    @Test func outputAreaLimit() throws {
        guard case .resize(let resize)? = try Pipeline.parse("image/resize,m_fixed,w_16384,h_2000,limit_0").actions.first else { return }
        #expect { try resize.geometry(sourceWidth: 100, sourceHeight: 100) } throws: { ($0 as? ProcessError)?.ec == "0040-00000007" }
    }
}

@Suite(.ownThreads) struct CropGeometryTests {
    @Test(arguments: [
        ("nw", 0, 0), ("north", 75, 0), ("ne", 150, 0), ("west", 0, 25), ("center", 75, 25),
        ("east", 150, 25), ("sw", 0, 50), ("south", 75, 50), ("se", 150, 50),
    ])
    func anchors(_ g: String, _ x: Int, _ y: Int) throws {
        let crop = Crop(width: 50, height: 50, gravity: Gravity(rawValue: g)!)
        let r = try crop.rectangle(imageWidth: 200, imageHeight: 100)
        #expect(r.left == x && r.top == y && r.width == 50 && r.height == 50)
    }

    @Test func clipsAndRejects() throws {
        let r = try Crop(width: 500, height: 500, x: 150, y: 20).rectangle(imageWidth: 200, imageHeight: 100)
        #expect(r.left == 150 && r.top == 20 && r.width == 50 && r.height == 80)
        #expect { try Crop(x: 200).rectangle(imageWidth: 200, imageHeight: 100) } throws: {
            ($0 as? ProcessError)?.code == .badRequest
        }
    }
}

/// A small deterministic generator so generated cases are the same on every run.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
