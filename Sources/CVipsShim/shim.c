#include "CVipsShim.h"
#include <vips/vector.h>
#include <fontconfig/fontconfig.h>

int dv_init(const char *argv0) {
    if (VIPS_INIT(argv0)) return -1;
    // A cached operation keyed by file name returns the old pixels for a rewritten file.
    vips_cache_set_max(0);
    vips_cache_set_max_mem(0);
    vips_cache_set_max_files(0);
    // Loaders marked untrusted (ImageMagick, PDF, SVG, ...) are fuzzing targets we do not need;
    // magick is unblocked for buffers only, and Swift admits it for BMP bytes alone.
    vips_block_untrusted_set(TRUE);
    // Liborc (0.4.33), which libvips 8.14 uses to vectorise resampling and convolution, crashed
    // about one build in four when several renders ran at once on this machine (a bad pointer
    // inside liborc, then heap corruption). The plain C paths are as fast for our workloads.
    vips_vector_set_enabled(FALSE);
    vips_operation_block_set("VipsForeignLoadMagickBuffer", FALSE);
    vips_operation_block_set("VipsForeignSaveMagickBuffer", FALSE);
    return 0;
}

char *dv_error_take(void) {
    char *message = vips_error_buffer_copy();
    return message;
}

void dv_unref(VipsImage *image) { if (image) g_object_unref(image); }
void dv_free(void *pointer) { g_free(pointer); }
void dv_strfreev(char **strings) { g_strfreev(strings); }

const char *dv_loader_for_buffer(const void *buf, size_t len) {
    const char *name = vips_foreign_find_load_buffer(buf, len);
    if (!name) vips_error_clear();
    return name;
}

int dv_header(const void *buf, size_t len, VipsImage **out) {
    *out = vips_image_new_from_buffer(buf, len, "", "access", VIPS_ACCESS_SEQUENTIAL, NULL);
    return *out ? 0 : -1;
}

int dv_load(const void *buf, size_t len, int all_pages, int fail_on, VipsImage **out) {
    if (all_pages)
        *out = vips_image_new_from_buffer(buf, len, "", "n", -1, "fail_on", fail_on,
                                          "access", VIPS_ACCESS_RANDOM, NULL);
    else
        *out = vips_image_new_from_buffer(buf, len, "", "fail_on", fail_on,
                                          "access", VIPS_ACCESS_RANDOM, NULL);
    return *out ? 0 : -1;
}

// Shrink-on-load: JPEG decodes at 1/2, 1/4 or 1/8 scale in the DCT, WebP at any scale.
int dv_load_shrunk(const void *buf, size_t len, int jpeg_shrink, double webp_scale, int fail_on,
                   VipsImage **out) {
    if (jpeg_shrink > 1)
        *out = vips_image_new_from_buffer(buf, len, "", "shrink", jpeg_shrink, "fail_on", fail_on,
                                          "access", VIPS_ACCESS_RANDOM, NULL);
    else
        *out = vips_image_new_from_buffer(buf, len, "", "scale", webp_scale, "fail_on", fail_on,
                                          "access", VIPS_ACCESS_RANDOM, NULL);
    return *out ? 0 : -1;
}

int dv_copy(VipsImage *in, VipsImage **out) { return vips_copy(in, out, NULL); }
int dv_copy_srgb(VipsImage *in, VipsImage **out) {
    VipsInterpretation type = in->Bands >= 3 ? VIPS_INTERPRETATION_sRGB : VIPS_INTERPRETATION_B_W;
    return vips_copy(in, out, "interpretation", type, NULL);
}
int dv_autorot(VipsImage *in, VipsImage **out) { return vips_autorot(in, out, NULL); }

// Bring any decoded image to 8-bit sRGB (keeping alpha): embedded ICC profiles are applied,
// CMYK without a profile uses libvips' built-in CMYK profile, 16-bit and grey are converted.
int dv_to_srgb(VipsImage *in, VipsImage **out) {
    VipsImage *current = in;
    g_object_ref(current);
    VipsImage *next = NULL;
    gboolean has_profile = vips_image_get_typeof(current, VIPS_META_ICC_NAME) != 0;
    if (current->Type == VIPS_INTERPRETATION_CMYK || has_profile) {
        // Import to the profile connection space; vips_colourspace then goes to sRGB, the same
        // route vips_thumbnail takes, so shrink-on-load and full decodes agree.
        int failed;
        if (current->Type == VIPS_INTERPRETATION_CMYK)
            failed = vips_icc_import(current, &next, "embedded", has_profile, "input_profile", "cmyk",
                                     "intent", VIPS_INTENT_RELATIVE, NULL);
        else
            failed = vips_icc_import(current, &next, "embedded", TRUE, "intent", VIPS_INTENT_RELATIVE, NULL);
        if (failed) {
            // A broken or mismatched profile: fall back to treating the pixels as sRGB.
            vips_error_clear();
            next = NULL;
        } else {
            g_object_unref(current);
            current = next;
        }
    }
    if (current->Type != VIPS_INTERPRETATION_sRGB || current->BandFmt != VIPS_FORMAT_UCHAR) {
        if (vips_colourspace(current, &next, VIPS_INTERPRETATION_sRGB, NULL)) {
            g_object_unref(current);
            return -1;
        }
        g_object_unref(current);
        current = next;
        if (current->BandFmt != VIPS_FORMAT_UCHAR) {
            if (vips_cast(current, &next, VIPS_FORMAT_UCHAR, NULL)) {
                g_object_unref(current);
                return -1;
            }
            g_object_unref(current);
            current = next;
        }
    }
    // Drop the profile: the pixels are sRGB now and outputs carry no metadata.
    if (vips_copy(current, &next, NULL)) { g_object_unref(current); return -1; }
    g_object_unref(current);
    vips_image_remove(next, VIPS_META_ICC_NAME);
    *out = next;
    return 0;
}

int dv_resize(VipsImage *in, VipsImage **out, double hscale, double vscale) {
    return vips_resize(in, out, hscale, "vscale", vscale, "kernel", VIPS_KERNEL_LANCZOS3, NULL);
}

int dv_extract_area(VipsImage *in, VipsImage **out, int left, int top, int width, int height) {
    return vips_extract_area(in, out, left, top, width, height, NULL);
}

int dv_extract_band(VipsImage *in, VipsImage **out, int band, int n) {
    return vips_extract_band(in, out, band, "n", n, NULL);
}

int dv_embed(VipsImage *in, VipsImage **out, int x, int y, int width, int height,
             const double *background, int n, int extend_copy) {
    if (extend_copy)
        return vips_embed(in, out, x, y, width, height, "extend", VIPS_EXTEND_COPY, NULL);
    VipsArrayDouble *bg = vips_array_double_new(background, n);
    int result = vips_embed(in, out, x, y, width, height, "extend", VIPS_EXTEND_BACKGROUND,
                            "background", bg, NULL);
    vips_area_unref(VIPS_AREA(bg));
    return result;
}

int dv_rot(VipsImage *in, VipsImage **out, int quarter_turns) {
    static const VipsAngle angles[4] = { VIPS_ANGLE_D0, VIPS_ANGLE_D90, VIPS_ANGLE_D180, VIPS_ANGLE_D270 };
    return vips_rot(in, out, angles[((quarter_turns % 4) + 4) % 4], NULL);
}

int dv_flip(VipsImage *in, VipsImage **out, int horizontal) {
    return vips_flip(in, out, horizontal ? VIPS_DIRECTION_HORIZONTAL : VIPS_DIRECTION_VERTICAL, NULL);
}

int dv_rotate(VipsImage *in, VipsImage **out, double angle, const double *background, int n) {
    VipsArrayDouble *bg = vips_array_double_new(background, n);
    int result = vips_rotate(in, out, angle, "background", bg, NULL);
    vips_area_unref(VIPS_AREA(bg));
    return result;
}

int dv_gaussblur(VipsImage *in, VipsImage **out, double sigma, double min_ampl) {
    return vips_gaussblur(in, out, sigma, "min_ampl", min_ampl, NULL);
}

// Unsharp mask: in + amount * (in - gaussblur(in, sigma)), rounded and clamped to 8 bits.
int dv_unsharp(VipsImage *in, VipsImage **out, double sigma, double amount) {
    VipsImage *blur = NULL, *detail = NULL, *scaled = NULL, *sum = NULL;
    int failed = vips_gaussblur(in, &blur, sigma, NULL)
        || vips_subtract(in, blur, &detail, NULL)
        || vips_linear1(detail, &scaled, amount, 0.5, NULL)
        || vips_add(in, scaled, &sum, NULL)
        || vips_cast(sum, out, VIPS_FORMAT_UCHAR, NULL);
    if (blur) g_object_unref(blur);
    if (detail) g_object_unref(detail);
    if (scaled) g_object_unref(scaled);
    if (sum) g_object_unref(sum);
    return failed ? -1 : 0;
}

int dv_linear(VipsImage *in, VipsImage **out, const double *a, const double *b, int n) {
    return vips_linear(in, out, (double *) a, (double *) b, n, NULL);
}

int dv_cast_uchar(VipsImage *in, VipsImage **out) {
    return vips_cast(in, out, VIPS_FORMAT_UCHAR, NULL);
}

int dv_flatten(VipsImage *in, VipsImage **out, const double *background, int n) {
    VipsArrayDouble *bg = vips_array_double_new(background, n);
    int result = vips_flatten(in, out, "background", bg, NULL);
    vips_area_unref(VIPS_AREA(bg));
    return result;
}

int dv_bandjoin2(VipsImage *a, VipsImage *b, VipsImage **out) {
    return vips_bandjoin2(a, b, out, NULL);
}

int dv_bandjoin_const1(VipsImage *in, VipsImage **out, double value) {
    return vips_bandjoin_const1(in, out, value, NULL);
}

int dv_multiply_scaled(VipsImage *a, VipsImage *b, double scale, VipsImage **out) {
    VipsImage *product = NULL, *scaled = NULL;
    if (vips_multiply(a, b, &product, NULL)) return -1;
    int failed = vips_linear1(product, &scaled, scale, 0.0, NULL);
    g_object_unref(product);
    if (failed) return -1;
    failed = vips_cast(scaled, out, VIPS_FORMAT_UCHAR, NULL);
    g_object_unref(scaled);
    return failed;
}

int dv_premultiply(VipsImage *in, VipsImage **out) { return vips_premultiply(in, out, NULL); }
int dv_unpremultiply(VipsImage *in, VipsImage **out) { return vips_unpremultiply(in, out, NULL); }

int dv_arrayjoin_vertical(VipsImage **in, int n, VipsImage **out) {
    return vips_arrayjoin(in, out, n, "across", 1, NULL);
}

int dv_text(VipsImage **out, const char *text, const char *font, int dpi) {
    return vips_text(out, text, "font", font, "dpi", dpi, NULL);
}

// A fully transparent (all zero) 8-bit sRGB image.
int dv_blank(VipsImage **out, int width, int height, int bands) {
    VipsImage *black = NULL, *cast = NULL;
    if (vips_black(&black, width, height, "bands", bands, NULL)) return -1;
    int failed = vips_cast(black, &cast, VIPS_FORMAT_UCHAR, NULL);
    g_object_unref(black);
    if (failed) return -1;
    failed = vips_copy(cast, out, "interpretation", VIPS_INTERPRETATION_sRGB, NULL);
    g_object_unref(cast);
    return failed;
}

// An image the size and format of `like` holding one constant pixel value.
int dv_constant_like(VipsImage *like, VipsImage **out, const double *values, int n) {
    VipsImage *constant = vips_image_new_from_image(like, values, n);
    if (!constant) return -1;
    int failed = vips_copy(constant, out, "interpretation", VIPS_INTERPRETATION_sRGB, NULL);
    g_object_unref(constant);
    return failed;
}

int dv_replicate(VipsImage *in, VipsImage **out, int across, int down) {
    return vips_replicate(in, out, across, down, NULL);
}

int dv_composite_over(VipsImage *base, VipsImage *overlay, VipsImage **out, int x, int y) {
    return vips_composite2(base, overlay, out, VIPS_BLEND_MODE_OVER, "x", x, "y", y, NULL);
}

int dv_font_file(const char *family, char **file, char **matched) {
    FcPattern *pattern = FcNameParse((const FcChar8 *) family);
    if (!pattern) return -1;
    FcConfigSubstitute(NULL, pattern, FcMatchPattern);
    FcDefaultSubstitute(pattern);
    FcResult result;
    FcPattern *match = FcFontMatch(NULL, pattern, &result);
    FcPatternDestroy(pattern);
    if (!match) return -1;
    FcChar8 *path = NULL, *name = NULL;
    int found = FcPatternGetString(match, FC_FILE, 0, &path) == FcResultMatch
        && FcPatternGetString(match, FC_FAMILY, 0, &name) == FcResultMatch;
    if (found) {
        *file = g_strdup((const char *) path);
        *matched = g_strdup((const char *) name);
    }
    FcPatternDestroy(match);
    return found ? 0 : -1;
}

int dv_save_jpeg(VipsImage *in, void **buf, size_t *len, int quality, int interlace) {
    return vips_jpegsave_buffer(in, buf, len, "Q", quality, "interlace", interlace,
                                "optimize_coding", TRUE, "strip", TRUE, NULL);
}

int dv_save_png(VipsImage *in, void **buf, size_t *len, int interlace) {
    return vips_pngsave_buffer(in, buf, len, "interlace", interlace, "strip", TRUE,
                               "compression", 6, NULL);
}

int dv_save_webp(VipsImage *in, void **buf, size_t *len, int quality) {
    return vips_webpsave_buffer(in, buf, len, "Q", quality, "strip", TRUE, NULL);
}

int dv_save_gif(VipsImage *in, void **buf, size_t *len, int interlace) {
    return vips_gifsave_buffer(in, buf, len, "interlace", interlace, "strip", TRUE, NULL);
}

int dv_save_tiff(VipsImage *in, void **buf, size_t *len, int quality) {
    (void) quality;
    return vips_tiffsave_buffer(in, buf, len, "compression", VIPS_FOREIGN_TIFF_COMPRESSION_DEFLATE,
                                "strip", TRUE, NULL);
}

int dv_save_heif(VipsImage *in, void **buf, size_t *len, int quality, int av1) {
    // AVIF at more than 8 bits aborts inside libaom on this platform: always 8-bit.
    // Effort 2 keeps AVIF near 50 ms for a web-sized image instead of over a second.
    return vips_heifsave_buffer(in, buf, len, "Q", quality, "bitdepth", 8,
                                "compression", av1 ? VIPS_FOREIGN_HEIF_COMPRESSION_AV1
                                                   : VIPS_FOREIGN_HEIF_COMPRESSION_HEVC,
                                "effort", 2, "strip", TRUE, NULL);
}

int dv_save_bmp(VipsImage *in, void **buf, size_t *len) {
    return vips_magicksave_buffer(in, buf, len, "format", "bmp", "strip", TRUE, NULL);
}
