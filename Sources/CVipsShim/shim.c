#define _GNU_SOURCE
#include "CVipsShim.h"
#include <vips/vector.h>
#include <fontconfig/fontconfig.h>
#include <pango/pangocairo.h>
#include <pango/pangofc-font.h>
#include <string.h>
#include <dlfcn.h>
#include <gmodule.h>
#include <stdlib.h>

// The libvips modules a worker loads. libvips loads every module in its module folder at start:
// on Debian also jxl, openslide and poppler, whose formats Derive never admits (their loaders are
// untrusted and blocked) and whose libraries' loading and binding were a fifth of the process time
// of a one-image render. heif reads and writes HEIC and AVIF; magick reads and writes BMP.
static const char *const dv_modules[] = { "heif", "magick" };

// The folder libvips' own modules are in: beside the libvips that is loaded, as libvips finds it.
// Found by a string inside libvips (a function's address can be a stub in the executable).
static char *dv_module_folder(void) {
    Dl_info info;
    if (!dladdr((const void *) vips_version_string(), &info) || !info.dli_fname) return NULL;
    char *library = realpath(info.dli_fname, NULL);
    if (!library) return NULL;
    char *folder = g_path_get_dirname(library);
    free(library);
    char *modules = g_strdup_printf("%s/vips-modules-%d.%d", folder, vips_version(0), vips_version(1));
    g_free(folder);
    return modules;
}

int dv_init(const char *argv0) {
    // libvips starts with a home that holds no modules (the caller has cleared VIPSHOME), then
    // the modules Derive uses are loaded from libvips' own folder.
    setenv("VIPSHOME", "/nonexistent/derive-render-worker", 1);
    int started = VIPS_INIT(argv0);
    unsetenv("VIPSHOME");
    if (started) return -1;
    char *folder = dv_module_folder();
    for (size_t index = 0; folder && index < sizeof dv_modules / sizeof dv_modules[0]; index++) {
        char *path = g_strdup_printf("%s/vips-%s.so", folder, dv_modules[index]);
        // GModule runs the module's g_module_check_init, which registers its loaders and savers.
        GModule *module = g_module_open(path, G_MODULE_BIND_LAZY);
        if (module) g_module_make_resident(module);
        g_free(path);
    }
    g_free(folder);
    // Leak checking (Tests/leak-check): with VIPS_LEAK set, libvips lists the objects still
    // alive when it shuts down, so shut it down at exit.
    if (getenv("VIPS_LEAK")) atexit(vips_shutdown);
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

static void *dv_copy_field(VipsImage *image, const char *name, GValue *value, void *a) {
    (void) image;
    // Built-in fields (width, bands, ...) are the new image's own; only metadata moves.
    if (vips_image_get_typeof((VipsImage *) a, name) == 0) vips_image_set((VipsImage *) a, name, value);
    return NULL;
}

// A still WebP's header read at `scale`: libwebp's loader allocates its RGBA frame (4 bytes a
// pixel at the scale) while reading the header and keeps it as long as the header image lives,
// so the header is read small and its metadata moved onto a pixel-less image of the stored
// `width`x`height` (what the file's VP8X/VP8/VP8L header says, read by Derive beforehand).
int dv_header_scaled(const void *buf, size_t len, double scale, int width, int height, VipsImage **out) {
    VipsImage *small = vips_image_new_from_buffer(buf, len, "", "scale", scale,
                                                  "access", VIPS_ACCESS_SEQUENTIAL, NULL);
    if (!small) return -1;
    VipsImage *image = vips_image_new();
    vips_image_init_fields(image, width, height, small->Bands, small->BandFmt, small->Coding,
                           small->Type, small->Xres, small->Yres);
    vips_image_map(small, dv_copy_field, image);
    g_object_unref(small);
    *out = image;
    return 0;
}

static void dv_free_memory(VipsImage *image, void *memory) {
    (void) image;
    g_free(memory);
}

// Evaluates `in` into one buffer and wraps it in an image that references nothing upstream:
// the loader behind `in` (and what it holds, such as ImageMagick's pixel cache) can go as soon
// as the caller drops `in`. The buffer is freed when the new image closes.
int dv_detach(VipsImage *in, VipsImage **out) {
    size_t size = 0;
    void *memory = vips_image_write_to_memory(in, &size);
    if (!memory) return -1;
    VipsImage *image = vips_image_new_from_memory(memory, size, in->Xsize, in->Ysize, in->Bands, in->BandFmt);
    if (!image) {
        g_free(memory);
        return -1;
    }
    g_signal_connect(image, "postclose", G_CALLBACK(dv_free_memory), memory);
    *out = image;
    return 0;
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

void dv_strip_metadata(VipsImage *image) {
    char **fields = vips_image_get_fields(image);
    for (int i = 0; fields[i]; i++) {
        const char *name = fields[i];
        if (g_str_has_prefix(name, "exif-") || g_str_has_prefix(name, "xmp-") || g_str_has_prefix(name, "iptc-")
            || strcmp(name, VIPS_META_EXIF_NAME) == 0 || strcmp(name, VIPS_META_XMP_NAME) == 0
            || strcmp(name, VIPS_META_IPTC_NAME) == 0 || strcmp(name, VIPS_META_ICC_NAME) == 0
            || strcmp(name, VIPS_META_PHOTOSHOP_NAME) == 0 || strcmp(name, "orientation") == 0
            || strcmp(name, "gif-comment") == 0 || g_str_has_prefix(name, "png-comment-")
            || strcmp(name, "heif-primary") == 0)
            vips_image_remove(image, name);
    }
    g_strfreev(fields);
}
int dv_copy_srgb(VipsImage *in, VipsImage **out) {
    VipsInterpretation type = in->Bands >= 3 ? VIPS_INTERPRETATION_sRGB : VIPS_INTERPRETATION_B_W;
    return vips_copy(in, out, "interpretation", type, NULL);
}
int dv_autorot(VipsImage *in, VipsImage **out) { return vips_autorot(in, out, NULL); }

// Bring any decoded image to 8-bit sRGB (keeping alpha). A source with an embedded profile (or
// CMYK, which falls back to libvips' built-in CMYK profile) goes through a real ICC transform to
// the sRGB profile, relative colorimetric, as `vips icc_transform ... srgb --embedded` does: an
// sRGB-tagged source keeps its values and greys stay grey. 16-bit and profile-less grey or RGB
// are converted by vips_colourspace.
int dv_to_srgb(VipsImage *in, VipsImage **out) {
    VipsImage *current = in;
    g_object_ref(current);
    VipsImage *next = NULL;
    gboolean has_profile = vips_image_get_typeof(current, VIPS_META_ICC_NAME) != 0;
    gboolean cmyk = current->Type == VIPS_INTERPRETATION_CMYK;
    if (cmyk || has_profile) {
        int failed = vips_icc_transform(current, &next, "srgb", "embedded", has_profile,
                                        "input_profile", cmyk ? "cmyk" : "srgb",
                                        "intent", VIPS_INTENT_RELATIVE, "depth", 8, NULL);
        if (failed) {
            // A broken or mismatched profile: fall back to treating the pixels as they are.
            vips_error_clear();
            next = NULL;
        } else {
            g_object_unref(current);
            current = next;
            if (vips_copy(current, &next, "interpretation", VIPS_INTERPRETATION_sRGB, NULL)) {
                g_object_unref(current);
                return -1;
            }
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
    // Drop every metadata item: the pixels are sRGB now and outputs carry no metadata
    // (no EXIF, XMP, IPTC, GPS or profile reaches a saver).
    if (vips_copy(current, &next, NULL)) { g_object_unref(current); return -1; }
    g_object_unref(current);
    dv_strip_metadata(next);
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

/* The properties of a matched font that decide how its glyphs are drawn and that fontconfig's
 * configuration may change without changing the file (a user's fonts.conf turning antialiasing
 * off, a hinting style, a sub-pixel order): part of the engine identity of a text watermark. */
static const char *dv_font_rendering_format =
    "antialias=%{antialias} hinting=%{hinting} hintstyle=%{hintstyle} autohint=%{autohint} rgba=%{rgba} "
    "lcdfilter=%{lcdfilter} embolden=%{embolden} matrix=%{matrix} index=%{index} fontversion=%{fontversion} "
    "variable=%{variable} fontvariations=%{fontvariations} fontfeatures=%{fontfeatures}";

int dv_font_file(const char *family, char **file, char **matched, char **rendering) {
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
        /* Every family name of the face (its own, then second and localized ones, as
         * `fc-list : family` prints them), one a line. */
        GString *names = g_string_new(NULL);
        for (int i = 0; FcPatternGetString(match, FC_FAMILY, i, &name) == FcResultMatch; i++) {
            if (i > 0) g_string_append_c(names, '\n');
            g_string_append(names, (const char *) name);
        }
        *matched = g_string_free(names, FALSE);
        FcChar8 *formatted = FcPatternFormat(match, (const FcChar8 *) dv_font_rendering_format);
        *rendering = g_strdup(formatted ? (const char *) formatted : "");
        if (formatted) FcStrFree(formatted);
    }
    FcPatternDestroy(match);
    return found ? 0 : -1;
}

/* Whether any installed face has the family of the pattern `family` (FcFontList, as `fc-list`
 * lists it): a family that is installed while a match of its name draws another is one the
 * configuration substitutes (a strong alias), not a missing one (attack 51c's 5). */
int dv_font_listed(const char *family) {
    FcPattern *pattern = FcNameParse((const FcChar8 *) family);
    if (!pattern) return 0;
    FcObjectSet *objects = FcObjectSetBuild(FC_FAMILY, NULL);
    FcFontSet *set = objects ? FcFontList(NULL, pattern, objects) : NULL;
    int listed = set && set->nfont > 0;
    if (set) FcFontSetDestroy(set);
    if (objects) FcObjectSetDestroy(objects);
    FcPatternDestroy(pattern);
    return listed;
}

/* The characters Pango can draw text of `family` with: the union of the charsets of every face
 * fontconfig sorts for it (the chosen face, then its fallbacks, which Pango walks for each
 * character it lacks), keeping only the formats Pango draws (since 1.44 TrueType and CFF:
 * HarfBuzz shapes nothing else). NULL when fontconfig has no answer; free with
 * dv_font_coverage_free. */
void *dv_font_coverage(const char *family) {
    FcPattern *pattern = FcNameParse((const FcChar8 *) family);
    if (!pattern) return NULL;
    FcConfigSubstitute(NULL, pattern, FcMatchPattern);
    FcDefaultSubstitute(pattern);
    FcResult result;
    FcFontSet *fonts = FcFontSort(NULL, pattern, FcFalse, NULL, &result);
    FcPatternDestroy(pattern);
    if (!fonts) return NULL;
    FcCharSet *coverage = FcCharSetCreate();
    for (int i = 0; coverage && i < fonts->nfont; i++) {
        FcChar8 *format = NULL;
        FcCharSet *charset = NULL;
        if (FcPatternGetString(fonts->fonts[i], FC_FONTFORMAT, 0, &format) != FcResultMatch
            || (strcmp((const char *) format, "TrueType") != 0 && strcmp((const char *) format, "CFF") != 0)
            || FcPatternGetCharSet(fonts->fonts[i], FC_CHARSET, 0, &charset) != FcResultMatch) continue;
        FcCharSetMerge(coverage, charset, NULL);
    }
    FcFontSetDestroy(fonts);
    return coverage;
}

/* The faces Pango draws `text` with in the font description `font` at `dpi`, laid out as
 * vips_text lays it out (a Cairo font map of its own, the same markup, description and
 * resolution), so every face is the one the render takes, at the pixel size it draws and in the
 * language of the run: a fonts.conf rule that tests the size or the language, or edits any
 * property, acts here as it does there (attack 50b's H3-H5). Each (face, language) once, in order
 * of use, one a line as `file TAB family TAB pattern`: the pattern is the face's whole resolved
 * FcPattern (after FcConfigSubstitute, FcDefaultSubstitute and FcFontRenderPrepare) as
 * FcNameUnparse writes it, without the charset and language set (the file's own, its digest
 * covers them) and without the names (below), then ` runlang=LANGUAGE`: the language Pango
 * shapes the run in. NULL when Pango lays nothing out; g_free the text. */
char *dv_text_faces(const char *text, const char *font, int dpi) {
    PangoFontMap *map = pango_cairo_font_map_new();
    if (!map) return NULL;
    PangoContext *context = pango_font_map_create_context(map);
    pango_cairo_context_set_resolution(context, dpi);
    PangoLayout *layout = pango_layout_new(context);
    pango_layout_set_markup(layout, text, -1);
    PangoFontDescription *description = pango_font_description_from_string(font);
    pango_layout_set_font_description(layout, description);
    pango_font_description_free(description);
    GString *lines = g_string_new(NULL);
    GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    PangoLayoutIter *iter = pango_layout_get_iter(layout);
    do {
        PangoLayoutRun *run = pango_layout_iter_get_run_readonly(iter);
        if (!run || !run->item->analysis.font || !PANGO_IS_FC_FONT(run->item->analysis.font)) continue;
        FcPattern *resolved = pango_fc_font_get_pattern(PANGO_FC_FONT(run->item->analysis.font));
        if (!resolved) continue;
        FcPattern *pattern = FcPatternDuplicate(resolved);
        FcPatternDel(pattern, FC_CHARSET);
        FcPatternDel(pattern, FC_LANG);
        FcChar8 *path = NULL, *name = NULL;
        FcPatternGetString(pattern, FC_FILE, 0, &path);
        /* The face's English family name where it has one: fontconfig orders a face's names by
         * the locale's language (namelang), which draws nothing. */
        FcChar8 *familyLanguage = NULL;
        for (int i = 0; FcPatternGetString(pattern, FC_FAMILY, i, &name) == FcResultMatch; i++) {
            if (FcPatternGetString(pattern, FC_FAMILYLANG, i, &familyLanguage) == FcResultMatch
                && strcmp((const char *) familyLanguage, "en") == 0) break;
            name = NULL;
        }
        if (!name) FcPatternGetString(pattern, FC_FAMILY, 0, &name);
        name = name ? (FcChar8 *) g_strdup((const char *) name) : NULL;
        /* The names and their languages follow the locale and draw nothing (file, index and the
         * file's digest name the face): out of the pattern, so two locales that draw the same
         * pixels give the same fingerprint. */
        FcPatternDel(pattern, FC_FAMILY); FcPatternDel(pattern, FC_FAMILYLANG);
        FcPatternDel(pattern, FC_STYLE); FcPatternDel(pattern, FC_STYLELANG);
        FcPatternDel(pattern, FC_FULLNAME); FcPatternDel(pattern, FC_FULLNAMELANG);
        FcPatternDel(pattern, FC_NAMELANG);
        FcChar8 *unparsed = FcNameUnparse(pattern);
        const char *language = run->item->analysis.language ? pango_language_to_string(run->item->analysis.language) : "";
        char *line = g_strdup_printf("%s\t%s\t%s runlang=%s\n", path ? (const char *) path : "", name ? (const char *) name : "",
                                     unparsed ? (const char *) unparsed : "", language);
        if (g_hash_table_add(seen, g_strdup(line))) g_string_append(lines, line);
        g_free(line);
        g_free(name);
        if (unparsed) FcStrFree(unparsed);
        FcPatternDestroy(pattern);
    } while (pango_layout_iter_next_run(iter));
    pango_layout_iter_free(iter);
    g_hash_table_destroy(seen);
    g_object_unref(layout);
    g_object_unref(context);
    g_object_unref(map);
    return g_string_free(lines, FALSE);
}

int dv_font_coverage_has(const void *coverage, unsigned int character) {
    return FcCharSetHasChar((const FcCharSet *) coverage, character);
}

void dv_font_coverage_free(void *coverage) {
    if (coverage) FcCharSetDestroy((FcCharSet *) coverage);
}

/* Every configuration file fontconfig loaded, one a line (g_free the text). */
char *dv_font_config_files(void) {
    GString *text = g_string_new(NULL);
    FcStrList *files = FcConfigGetConfigFiles(NULL);
    if (files) {
        FcChar8 *file;
        while ((file = FcStrListNext(files)) != NULL) {
            g_string_append(text, (const char *) file);
            g_string_append_c(text, '\n');
        }
        FcStrListDone(files);
    }
    return g_string_free(text, FALSE);
}

/* Every font folder fontconfig reads (those configured, present or not, and every subfolder it
 * scanned), its configuration folders and its cache folders, one a line (g_free the text). */
char *dv_font_folders(void) {
    GString *text = g_string_new(NULL);
    FcStrList *lists[] = { FcConfigGetFontDirs(NULL), FcConfigGetConfigDirs(NULL), FcConfigGetCacheDirs(NULL) };
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        if (!lists[i]) continue;
        FcChar8 *folder;
        while ((folder = FcStrListNext(lists[i])) != NULL) {
            g_string_append(text, (const char *) folder);
            g_string_append_c(text, '\n');
        }
        FcStrListDone(lists[i]);
    }
    return g_string_free(text, FALSE);
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
    // Effort 0 is aom's speed 9: about 0.16 µs of CPU per pixel of a photo (0.35 for noise),
    // where effort 2 (speed 7) cost four times that and a 4096x4096 AVIF ran for a minute.
    return vips_heifsave_buffer(in, buf, len, "Q", quality, "bitdepth", 8,
                                "compression", av1 ? VIPS_FOREIGN_HEIF_COMPRESSION_AV1
                                                   : VIPS_FOREIGN_HEIF_COMPRESSION_HEVC,
                                "effort", 0, "strip", TRUE, NULL);
}

int dv_save_bmp(VipsImage *in, void **buf, size_t *len) {
    return vips_magicksave_buffer(in, buf, len, "format", "bmp", "strip", TRUE, NULL);
}

// ---------------------------------------------------------------------------------------------
// Streaming loads.

int dv_load_stream(const void *buf, size_t len, int page, int n, int jpeg_shrink, double webp_scale,
                   int fail_on, VipsImage **out) {
    const char *loader = vips_foreign_find_load_buffer(buf, len);
    if (!loader) return -1;
    // Options a loader does not have are errors in libvips, so each is given only where it exists.
    gboolean paged = strstr(loader, "gif") || strstr(loader, "Webp") || strstr(loader, "Tiff")
        || strstr(loader, "Heif");
    if (strstr(loader, "Jpeg"))
        *out = vips_image_new_from_buffer(buf, len, "", "shrink", jpeg_shrink > 1 ? jpeg_shrink : 1,
                                          "fail_on", fail_on, "access", VIPS_ACCESS_SEQUENTIAL, NULL);
    else if (strstr(loader, "Webp"))
        *out = vips_image_new_from_buffer(buf, len, "", "page", page, "n", n,
                                          "scale", webp_scale > 0 ? webp_scale : 1.0,
                                          "fail_on", fail_on, "access", VIPS_ACCESS_SEQUENTIAL, NULL);
    else if (paged)
        *out = vips_image_new_from_buffer(buf, len, "", "page", page, "n", n,
                                          "fail_on", fail_on, "access", VIPS_ACCESS_SEQUENTIAL, NULL);
    else
        *out = vips_image_new_from_buffer(buf, len, "", "fail_on", fail_on,
                                          "access", VIPS_ACCESS_SEQUENTIAL, NULL);
    return *out ? 0 : -1;
}

int dv_evaluate(VipsImage *in) {
    double mean;
    return vips_avg(in, &mean, NULL);
}

int dv_copy_memory(VipsImage *in, VipsImage **out) {
    *out = vips_image_copy_memory(in);
    return *out ? 0 : -1;
}

// ---------------------------------------------------------------------------------------------
// Deadlines and cancellation.

struct DvWatch {
    gint refs;
    gint cancelled;
    gint64 deadline;        // g_get_monotonic_time() microseconds; 0 = none
    GMutex lock;
    GPtrArray *images;      // watched images, not owned (removed when finalised)
};

static _Thread_local DvWatch *dv_current_watch = NULL;

DvWatch *dv_watch_new(double seconds) {
    DvWatch *watch = g_new0(DvWatch, 1);
    watch->refs = 1;
    if (seconds > 0) watch->deadline = g_get_monotonic_time() + (gint64) (seconds * 1e6);
    g_mutex_init(&watch->lock);
    watch->images = g_ptr_array_new();
    return watch;
}

void dv_watch_unref(DvWatch *watch) {
    if (!watch || !g_atomic_int_dec_and_test(&watch->refs)) return;
    g_ptr_array_free(watch->images, TRUE);
    g_mutex_clear(&watch->lock);
    g_free(watch);
}

int dv_watch_state(DvWatch *watch) {
    if (g_atomic_int_get(&watch->cancelled)) return 2;
    if (watch->deadline && g_get_monotonic_time() >= watch->deadline) return 1;
    return 0;
}

// Kills every image still alive: whichever of them libvips evaluates next stops with an error.
static void dv_watch_kill_all(DvWatch *watch) {
    g_mutex_lock(&watch->lock);
    for (guint i = 0; i < watch->images->len; i++)
        vips_image_set_kill((VipsImage *) g_ptr_array_index(watch->images, i), TRUE);
    g_mutex_unlock(&watch->lock);
}

void dv_watch_cancel(DvWatch *watch) {
    g_atomic_int_set(&watch->cancelled, 1);
    dv_watch_kill_all(watch);
}

void dv_watch_set_current(DvWatch *watch) { dv_current_watch = watch; }
int dv_watch_current_state(void) { return dv_current_watch ? dv_watch_state(dv_current_watch) : 0; }

static void dv_watch_eval(VipsImage *image, VipsProgress *progress, DvWatch *watch) {
    (void) image; (void) progress;
    if (dv_watch_state(watch)) dv_watch_kill_all(watch);
}

static void dv_watch_forget(gpointer data, GObject *image) {
    DvWatch *watch = data;
    g_mutex_lock(&watch->lock);
    g_ptr_array_remove_fast(watch->images, image);
    g_mutex_unlock(&watch->lock);
    dv_watch_unref(watch);
}

void dv_watch_current_attach(VipsImage *image) {
    DvWatch *watch = dv_current_watch;
    if (!watch || !image) return;
    g_atomic_int_inc(&watch->refs);
    g_mutex_lock(&watch->lock);
    g_ptr_array_add(watch->images, image);
    g_mutex_unlock(&watch->lock);
    g_object_weak_ref(G_OBJECT(image), dv_watch_forget, watch);
    // The eval signal goes to the image libvips evaluates (and images built on it inherit it).
    g_signal_connect(image, "eval", G_CALLBACK(dv_watch_eval), watch);
    vips_image_set_progress(image, TRUE);
    if (dv_watch_state(watch)) vips_image_set_kill(image, TRUE);
}

// ---------------------------------------------------------------------------------------------
// Library versions.

#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <jconfig.h>
#include <png.h>
#include <lcms2.h>

#define DV_STR2(x) #x
#define DV_STR(x) DV_STR2(x)

// A handle on a shared object libvips or one of its modules links. Libraries of libvips' modules
// (HEIF, ImageMagick) are loaded here if libvips has not started, so the answer never depends on
// whether it has; nothing is initialised by loading them.
static void *dv_loaded(const char *soname) { return dlopen(soname, RTLD_LAZY | RTLD_LOCAL); }

typedef const char *(*dv_string_fn)(void);
typedef int (*dv_int_fn)(void);

static void dv_append(GString *text, const char *name, const char *version) {
    // First line only (libtiff's version string goes on with its copyright).
    if (version && *version) g_string_append_printf(text, "%s=%.*s\n", name, (int) strcspn(version, "\n"), version);
}

// "1.2.3" from a packed 0xMMmmpp integer.
static void dv_append_packed(GString *text, const char *name, int v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%d.%d.%d", (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff);
    dv_append(text, name, buf);
}

// For libraries with no version call: the version in the real file name of the loaded object
// (libexif.so.12.3.4 -> "so 12.3.4").
static void dv_append_file_version(GString *text, const char *name, const char *soname) {
    void *handle = dv_loaded(soname);
    if (!handle) return;
    struct link_map *map = NULL;
    if (dlinfo(handle, RTLD_DI_LINKMAP, &map) == 0 && map && map->l_name) {
        char resolved[PATH_MAX];
        if (realpath(map->l_name, resolved)) {
            const char *so = strstr(resolved, ".so.");
            if (so) {
                char buf[64];
                snprintf(buf, sizeof buf, "so %s", so + 4);
                dv_append(text, name, buf);
            }
        }
    }
    dlclose(handle);
}

static void dv_append_call(GString *text, const char *name, const char *soname, const char *symbol) {
    void *handle = dv_loaded(soname);
    if (!handle) return;
    dv_string_fn fn = (dv_string_fn) dlsym(handle, symbol);
    if (fn) dv_append(text, name, fn());
    dlclose(handle);
}

char *dv_library_versions(void) {
    GString *text = g_string_new(NULL);
    dv_append(text, "libvips", vips_version_string());
    // libjpeg-turbo has no version call: the version it was built against (same Debian package).
    dv_append(text, "libjpeg-turbo", DV_STR(LIBJPEG_TURBO_VERSION));
    {
        void *h = dv_loaded("libpng16.so.16");
        if (h) {
            typedef const char *(*ver_fn)(void *);
            ver_fn fn = (ver_fn) dlsym(h, "png_get_libpng_ver");
            if (fn) dv_append(text, "libpng", fn(NULL));
            dlclose(h);
        }
    }
    {
        void *h = dv_loaded("libwebp.so.7");
        if (h) {
            dv_int_fn enc = (dv_int_fn) dlsym(h, "WebPGetEncoderVersion");
            if (enc) dv_append_packed(text, "libwebp", enc());
            dlclose(h);
        }
    }
    {
        void *h = dv_loaded("liblcms2.so.2");
        if (h) {
            dv_int_fn fn = (dv_int_fn) dlsym(h, "cmsGetEncodedCMMversion");
            if (fn) {
                char buf[32];
                int v = fn();
                snprintf(buf, sizeof buf, "%d.%d", v / 1000, (v % 1000) / 10);
                dv_append(text, "lcms2", buf);
            }
            dlclose(h);
        }
    }
    dv_append_file_version(text, "libexif", "libexif.so.12");
    dv_append_file_version(text, "cgif", "libcgif.so.0");
    {
        void *h = dv_loaded("libimagequant.so.0");
        if (h) {
            dv_int_fn fn = (dv_int_fn) dlsym(h, "liq_version");
            if (fn) {
                char buf[32];
                int v = fn();
                snprintf(buf, sizeof buf, "%d.%d.%d", v / 10000, (v / 100) % 100, v % 100);
                dv_append(text, "libimagequant", buf);
            }
            dlclose(h);
        }
    }
    dv_append_call(text, "libtiff", "libtiff.so.6", "TIFFGetVersion");
    dv_append_call(text, "zlib", "libz.so.1", "zlibVersion");
    dv_append_call(text, "libheif", "libheif.so.1", "heif_get_version");
    dv_append_call(text, "libaom", "libaom.so.3", "aom_codec_version_str");
    dv_append_call(text, "libde265", "libde265.so.0", "de265_get_version");
    {
        void *h = dv_loaded("libx265.so.199");
        if (h) {
            const char **v = (const char **) dlsym(h, "x265_version_str");
            if (v && *v) dv_append(text, "x265", *v);
            dlclose(h);
        }
    }
    dv_append_call(text, "dav1d", "libdav1d.so.6", "dav1d_version");
    dv_append_call(text, "pango", "libpango-1.0.so.0", "pango_version_string");
    dv_append_call(text, "cairo", "libcairo.so.2", "cairo_version_string");
    dv_append_call(text, "harfbuzz", "libharfbuzz.so.0", "hb_version_string");
    {
        void *h = dv_loaded("libfontconfig.so.1");
        if (h) {
            dv_int_fn fn = (dv_int_fn) dlsym(h, "FcGetVersion");
            if (fn) {
                char buf[32];
                int v = fn();
                snprintf(buf, sizeof buf, "%d.%d.%d", v / 10000, (v / 100) % 100, v % 100);
                dv_append(text, "fontconfig", buf);
            }
            dlclose(h);
        }
    }
    dv_append_file_version(text, "freetype", "libfreetype.so.6");
    {
        void *h = dv_loaded("libMagickCore-6.Q16.so.6");
        if (h) {
            typedef const char *(*magick_fn)(size_t *);
            magick_fn fn = (magick_fn) dlsym(h, "GetMagickVersion");
            if (fn) {
                size_t number = 0;
                const char *v = fn(&number);
                // "ImageMagick 6.9.11-60 Q16 x86_64 ..." -> "6.9.11-60"
                if (v && strncmp(v, "ImageMagick ", 12) == 0) {
                    char buf[32];
                    snprintf(buf, sizeof buf, "%s", v + 12);
                    char *space = strchr(buf, ' ');
                    if (space) *space = 0;
                    dv_append(text, "imagemagick", buf);
                }
            }
            dlclose(h);
        }
    }
    return g_string_free(text, FALSE);
}

// ---------------------------------------------------------------------------------------------
// HEIC through libheif directly. libvips 8.14 maps its `effort` to libheif's "speed" parameter,
// which the x265 plugin does not have, so every HEIC was encoded at x265's default "slow" preset:
// about 4 µs of CPU per pixel, a 2048x2048 noise image over two minutes on a busy 2-core machine.
// "ultrafast" costs about 0.6 µs per pixel.

#include <libheif/heif.h>

typedef struct {
    GByteArray *bytes;
} DvHeifSink;

static struct heif_error dv_heif_write(struct heif_context *ctx, const void *data, size_t size, void *userdata) {
    (void) ctx;
    DvHeifSink *sink = userdata;
    g_byte_array_append(sink->bytes, data, (guint) size);
    struct heif_error ok = { heif_error_Ok, heif_suberror_Unspecified, "" };
    return ok;
}

int dv_save_heic_fast(VipsImage *in, void **buf, size_t *len, int quality) {
    *buf = NULL;
    *len = 0;
    if (in->BandFmt != VIPS_FORMAT_UCHAR || (in->Bands != 3 && in->Bands != 4)) {
        vips_error("heicsave", "%s", "expected 8-bit RGB or RGBA");
        return -1;
    }
    size_t size = 0;
    // Evaluates the pipeline (under the render's watch) into one packed buffer.
    void *pixels = vips_image_write_to_memory(in, &size);
    if (!pixels) return -1;
    int width = in->Xsize, height = in->Ysize, bands = in->Bands;
    int result = -1;
    struct heif_context *context = heif_context_alloc();
    struct heif_encoder *encoder = NULL;
    struct heif_image *image = NULL;
    struct heif_image_handle *handle = NULL;
    struct heif_error error = heif_context_get_encoder_for_format(context, heif_compression_HEVC, &encoder);
    if (error.code) goto done;
    heif_encoder_set_lossy_quality(encoder, quality);
    heif_encoder_set_parameter_string(encoder, "preset", "ultrafast");
    error = heif_image_create(width, height, heif_colorspace_RGB,
                              bands == 4 ? heif_chroma_interleaved_RGBA : heif_chroma_interleaved_RGB, &image);
    if (error.code) goto done;
    error = heif_image_add_plane(image, heif_channel_interleaved, width, height, 8);
    if (error.code) goto done;
    int stride = 0;
    uint8_t *plane = heif_image_get_plane(image, heif_channel_interleaved, &stride);
    for (int y = 0; y < height; y++)
        memcpy(plane + (size_t) y * stride, (uint8_t *) pixels + (size_t) y * width * bands, (size_t) width * bands);
    error = heif_context_encode_image(context, image, encoder, NULL, &handle);
    if (error.code) goto done;
    DvHeifSink sink = { g_byte_array_new() };
    struct heif_writer writer = { 1, dv_heif_write };
    error = heif_context_write(context, &writer, &sink);
    if (error.code) {
        g_byte_array_free(sink.bytes, TRUE);
        goto done;
    }
    *len = sink.bytes->len;
    *buf = g_byte_array_free(sink.bytes, FALSE);
    result = 0;
done:
    if (result) vips_error("heicsave", "libheif: %s", error.message ? error.message : "failed");
    if (handle) heif_image_handle_release(handle);
    if (image) heif_image_release(image);
    if (encoder) heif_encoder_release(encoder);
    heif_context_free(context);
    g_free(pixels);
    return result;
}

// ---------------------------------------------------------------------------------------------
// A whole-file JPEG check with libjpeg (see the header).

#include <stdio.h>
#include <setjmp.h>
#include <jpeglib.h>

typedef struct {
    struct jpeg_error_mgr manager;
    jmp_buf escape;
    char first[JMSG_LENGTH_MAX];
} DvJpegErrors;

static void dv_jpeg_error_exit(j_common_ptr cinfo) {
    DvJpegErrors *errors = (DvJpegErrors *) cinfo->err;
    if (!errors->first[0]) cinfo->err->format_message(cinfo, errors->first);
    longjmp(errors->escape, 1);
}

static void dv_jpeg_emit(j_common_ptr cinfo, int level) {
    // Level -1 is a warning (corrupt data, a short file); higher levels are trace messages.
    if (level >= 0) return;
    DvJpegErrors *errors = (DvJpegErrors *) cinfo->err;
    cinfo->err->num_warnings++;
    if (!errors->first[0]) cinfo->err->format_message(cinfo, errors->first);
}

int dv_jpeg_verify(const void *buf, size_t len, char *message, size_t message_size) {
    struct jpeg_decompress_struct cinfo;
    DvJpegErrors errors;
    memset(&errors, 0, sizeof errors);
    cinfo.err = jpeg_std_error(&errors.manager);
    errors.manager.error_exit = dv_jpeg_error_exit;
    errors.manager.emit_message = dv_jpeg_emit;
    volatile JSAMPARRAY rows = NULL;
    if (setjmp(errors.escape)) {
        jpeg_destroy_decompress(&cinfo);
        if (rows) { g_free(rows[0]); g_free(rows); }
        g_strlcpy(message, errors.first, message_size);
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, buf, (unsigned long) len);
    jpeg_read_header(&cinfo, TRUE);
    // 1/8 scale: the entropy decoder reads every byte, the inverse DCT is one coefficient.
    cinfo.scale_num = 1;
    cinfo.scale_denom = 8;
    cinfo.dct_method = JDCT_IFAST;
    cinfo.do_fancy_upsampling = FALSE;
    cinfo.do_block_smoothing = FALSE;
    jpeg_start_decompress(&cinfo);
    JSAMPROW row = g_malloc((size_t) cinfo.output_width * cinfo.output_components);
    rows = g_malloc(sizeof(JSAMPROW));
    rows[0] = row;
    while (cinfo.output_scanline < cinfo.output_height && !errors.manager.num_warnings)
        jpeg_read_scanlines(&cinfo, rows, 1);
    if (!errors.manager.num_warnings) jpeg_finish_decompress(&cinfo);
    long warnings = errors.manager.num_warnings;
    jpeg_destroy_decompress(&cinfo);
    g_free(row);
    g_free(rows);
    if (warnings) {
        g_strlcpy(message, errors.first, message_size);
        return -1;
    }
    return 0;
}
