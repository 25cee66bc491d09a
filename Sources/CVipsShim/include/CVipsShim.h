// Fixed-signature wrappers around the variadic libvips calls Derive uses.
// Swift cannot call C variadic functions, so every optional argument we need is a parameter here.
// All functions return 0 on success and -1 on failure (the message is in the libvips error buffer).
#ifndef DERIVE_CVIPS_SHIM_H
#define DERIVE_CVIPS_SHIM_H

#include <vips/vips.h>
#include <vips/vector.h>

int dv_init(const char *argv0);
char *dv_error_take(void);
void dv_unref(VipsImage *image);
void dv_free(void *pointer);
void dv_strfreev(char **strings);

const char *dv_loader_for_buffer(const void *buf, size_t len);
int dv_header(const void *buf, size_t len, VipsImage **out);
int dv_detach(VipsImage *in, VipsImage **out);
int dv_header_scaled(const void *buf, size_t len, double scale, int width, int height, VipsImage **out);
int dv_load(const void *buf, size_t len, int all_pages, int fail_on, VipsImage **out);
int dv_load_shrunk(const void *buf, size_t len, int jpeg_shrink, double webp_scale, int fail_on,
                   VipsImage **out);

// Sequential decoding (streams top to bottom, as vips_thumbnail does); `shrink` > 1 asks the
// JPEG decoder for 1/2, 1/4 or 1/8, `scale` < 1 the WebP decoder for any scale; `n` frames
// (-1: all) from `page`.
int dv_load_stream(const void *buf, size_t len, int page, int n, int jpeg_shrink, double webp_scale,
                   int fail_on, VipsImage **out);
int dv_copy_memory(VipsImage *in, VipsImage **out);
/// Evaluates every pixel of `in` without keeping them (a decode check); 0 when all decoded.
int dv_evaluate(VipsImage *in);

// A deadline and a cancellation flag for one render. Every image made while a watch is current
// on the calling thread gets libvips' eval signal; when the deadline passes or the watch is
// cancelled, every watched image is killed, so libvips stops evaluating at its next tile.
typedef struct DvWatch DvWatch;
DvWatch *dv_watch_new(double seconds);
void dv_watch_unref(DvWatch *watch);
void dv_watch_cancel(DvWatch *watch);
/// 0 running, 1 past the deadline, 2 cancelled.
int dv_watch_state(DvWatch *watch);
/// Makes `watch` the current one of this thread (NULL: none).
void dv_watch_set_current(DvWatch *watch);
/// Watches `image` with the thread's current watch, if any.
void dv_watch_current_attach(VipsImage *image);
/// The state of the thread's current watch (0 when there is none).
int dv_watch_current_state(void);

/// Versions of the libraries that produce bytes, as "name=version" lines (g_free'd by the caller).
char *dv_library_versions(void);

int dv_copy(VipsImage *in, VipsImage **out);
/// Removes EXIF, XMP, IPTC, ICC, orientation and comments from `image` (a fresh copy).
void dv_strip_metadata(VipsImage *image);
int dv_copy_srgb(VipsImage *in, VipsImage **out);
int dv_autorot(VipsImage *in, VipsImage **out);
int dv_to_srgb(VipsImage *in, VipsImage **out);
int dv_resize(VipsImage *in, VipsImage **out, double hscale, double vscale);
int dv_extract_area(VipsImage *in, VipsImage **out, int left, int top, int width, int height);
int dv_extract_band(VipsImage *in, VipsImage **out, int band, int n);
int dv_embed(VipsImage *in, VipsImage **out, int x, int y, int width, int height,
             const double *background, int n, int extend_copy);
int dv_rot(VipsImage *in, VipsImage **out, int quarter_turns);
int dv_flip(VipsImage *in, VipsImage **out, int horizontal);
int dv_rotate(VipsImage *in, VipsImage **out, double angle, const double *background, int n);
int dv_gaussblur(VipsImage *in, VipsImage **out, double sigma, double min_ampl);
int dv_unsharp(VipsImage *in, VipsImage **out, double sigma, double amount);
int dv_linear(VipsImage *in, VipsImage **out, const double *a, const double *b, int n);
int dv_cast_uchar(VipsImage *in, VipsImage **out);
int dv_flatten(VipsImage *in, VipsImage **out, const double *background, int n);
int dv_bandjoin2(VipsImage *a, VipsImage *b, VipsImage **out);
int dv_bandjoin_const1(VipsImage *in, VipsImage **out, double value);
int dv_multiply_scaled(VipsImage *a, VipsImage *b, double scale, VipsImage **out);
int dv_premultiply(VipsImage *in, VipsImage **out);
int dv_unpremultiply(VipsImage *in, VipsImage **out);
int dv_arrayjoin_vertical(VipsImage **in, int n, VipsImage **out);

int dv_text(VipsImage **out, const char *text, const char *font, int dpi);
int dv_blank(VipsImage **out, int width, int height, int bands);
int dv_constant_like(VipsImage *like, VipsImage **out, const double *values, int n);
int dv_replicate(VipsImage *in, VipsImage **out, int across, int down);
int dv_composite_over(VipsImage *base, VipsImage *overlay, VipsImage **out, int x, int y);
/// The file fontconfig picks for `family` and every family name of the face it matched, one a
/// line (both g_free'd by the caller); returns -1 when nothing matches.
int dv_font_file(const char *family, char **file, char **matched, char **rendering);
// Whether fontconfig lists a face of the family `family` (a pattern), as `fc-list : family` does.
int dv_font_listed(const char *family);
/// The characters text in `family` can be drawn with (the face fontconfig picks and its
/// fallbacks, in the formats Pango draws), NULL when fontconfig has no answer; read it with
/// dv_font_coverage_has (safe from any thread), free it with dv_font_coverage_free.
void *dv_font_coverage(const char *family);
int dv_font_coverage_has(const void *coverage, unsigned int character);
void dv_font_coverage_free(void *coverage);
/// The faces Pango draws `text` (markup, as dv_text) with in `font` at `dpi`, one a line:
/// `file TAB family TAB resolved pattern runlang=LANGUAGE`; g_free the text.
char *dv_text_faces(const char *text, const char *font, int dpi);
char *dv_font_config_files(void);
char *dv_font_folders(void);

int dv_save_jpeg(VipsImage *in, void **buf, size_t *len, int quality, int interlace);
int dv_save_png(VipsImage *in, void **buf, size_t *len, int interlace);
int dv_save_webp(VipsImage *in, void **buf, size_t *len, int quality);
int dv_save_gif(VipsImage *in, void **buf, size_t *len, int interlace);
int dv_save_tiff(VipsImage *in, void **buf, size_t *len, int quality);
int dv_save_heif(VipsImage *in, void **buf, size_t *len, int quality, int av1);
// HEIC through libheif with x265's "ultrafast" preset (libvips 8.14 cannot choose it); `in` is
// 8-bit sRGB with 3 or 4 bands, in memory.
int dv_save_heic_fast(VipsImage *in, void **buf, size_t *len, int quality);

// Decodes a whole JPEG once at 1/8 scale with libjpeg, counting its warnings: 0 when clean,
// -1 when it is corrupt or truncated (the reason is written to `message`). libvips 8.14 ignores
// warnings that arrive at the end of a shrunk decode or below the rows a crop reads.
int dv_jpeg_verify(const void *buf, size_t len, char *message, size_t message_size);
int dv_save_bmp(VipsImage *in, void **buf, size_t *len);

#endif
