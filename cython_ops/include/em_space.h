/* Data movement between space, depth and batch: a gather through per-axis index tables (MIRROR_PAD: each output
 * coordinate's input coordinate is precomputed at load), SPACE_TO_BATCH_ND and BATCH_TO_SPACE_ND (4-D NHWC; a 3-D
 * input is NHC with W = 1).  SPACE_TO_DEPTH / DEPTH_TO_SPACE are plain strided gathers (em_shape.h).  Element
 * size is a parameter: one kernel serves every dtype. */
#ifndef EM_SPACE_H
#define EM_SPACE_H
#include <string.h>
#include <stdint.h>
#include "em_params.h"

/* em_gather_indexed, layout EM_GATHER_INDEXED: y[o] = x[T0[i0] + ... + T5[i5]] over the 6-D output index, where
 * Tk holds for each output coordinate of axis k the input element offset it reads.
 * ptr: input, output, tables (int64, the six tables one after another); i: itemsize, output dims (6), table
 * starts (6, positions in tables) */
enum { EM_GATHER_INDEXED_P_INPUT, EM_GATHER_INDEXED_P_OUTPUT, EM_GATHER_INDEXED_P_TABLES,
       EM_GATHER_INDEXED_P_COUNT };
enum { EM_GATHER_INDEXED_I_ITEMSIZE, EM_GATHER_INDEXED_I_DIMS,
       EM_GATHER_INDEXED_I_DIMS_LAST = EM_GATHER_INDEXED_I_DIMS + 5, EM_GATHER_INDEXED_I_STARTS,
       EM_GATHER_INDEXED_I_STARTS_LAST = EM_GATHER_INDEXED_I_STARTS + 5, EM_GATHER_INDEXED_I_COUNT };
enum { EM_GATHER_INDEXED_F_COUNT = 0 };

#define EM_GATHER_INDEXED_LOOP(T)                                                                          \
    {                                                                                                      \
        const T* x = (const T*)p->ptr[EM_GATHER_INDEXED_P_INPUT];                                          \
        T* y = (T*)p->ptr[EM_GATHER_INDEXED_P_OUTPUT];                                                     \
        int64_t o = 0;                                                                                     \
        for (int64_t i0 = 0; i0 < dims[0]; i0++)                                                           \
        for (int64_t i1 = 0; i1 < dims[1]; i1++)                                                           \
        for (int64_t i2 = 0; i2 < dims[2]; i2++)                                                           \
        for (int64_t i3 = 0; i3 < dims[3]; i3++)                                                           \
        for (int64_t i4 = 0; i4 < dims[4]; i4++) {                                                         \
            const int64_t base = t[0][i0] + t[1][i1] + t[2][i2] + t[3][i3] + t[4][i4];                     \
            for (int64_t i5 = 0; i5 < dims[5]; i5++) y[o++] = x[base + t[5][i5]];                           \
        }                                                                                                  \
    }

static void em_gather_indexed(const em_params* p) {
    const int64_t* dims = p->i + EM_GATHER_INDEXED_I_DIMS;
    const int64_t* tables = (const int64_t*)p->ptr[EM_GATHER_INDEXED_P_TABLES];
    const int64_t* t[6];
    for (int k = 0; k < 6; k++) t[k] = tables + p->i[EM_GATHER_INDEXED_I_STARTS + k];
    switch (p->i[EM_GATHER_INDEXED_I_ITEMSIZE]) {
    case 1: EM_GATHER_INDEXED_LOOP(uint8_t) break;
    case 2: EM_GATHER_INDEXED_LOOP(uint16_t) break;
    case 4: EM_GATHER_INDEXED_LOOP(uint32_t) break;
    case 8: EM_GATHER_INDEXED_LOOP(uint64_t) break;
    }
}
#undef EM_GATHER_INDEXED_LOOP

/* em_space_to_batch / em_batch_to_space, layout EM_BATCH_SPACE:
 * ptr: input, output, pad pixel (pixel bytes of pad values; SPACE_TO_BATCH_ND only)
 * i:   pixel bytes (channels x itemsize), batch of the spatial side (N), its height and width, the blocked side's
 *      height and width, block height and width, pad_top / pad_left (SPACE_TO_BATCH_ND) or crop_top / crop_left
 *      (BATCH_TO_SPACE_ND)
 * The blocked side has N * block_h * block_w images; image (by * block_w + bx) * N + n holds the pixels
 * (y * block_h + by, x * block_w + bx) of image n of the (padded, or uncropped) spatial side. */
enum { EM_BATCH_SPACE_P_INPUT, EM_BATCH_SPACE_P_OUTPUT, EM_BATCH_SPACE_P_PAD_PIXEL, EM_BATCH_SPACE_P_COUNT };
enum { EM_BATCH_SPACE_I_PIXEL_BYTES, EM_BATCH_SPACE_I_BATCH, EM_BATCH_SPACE_I_HEIGHT, EM_BATCH_SPACE_I_WIDTH,
       EM_BATCH_SPACE_I_BLOCKED_HEIGHT, EM_BATCH_SPACE_I_BLOCKED_WIDTH, EM_BATCH_SPACE_I_BLOCK_H,
       EM_BATCH_SPACE_I_BLOCK_W, EM_BATCH_SPACE_I_TOP, EM_BATCH_SPACE_I_LEFT, EM_BATCH_SPACE_I_COUNT };
enum { EM_BATCH_SPACE_F_COUNT = 0 };

/* The blocked side walked in its own order; to_blocks: copy spatial -> blocked (pixels outside the spatial
 * image take the pad value), else blocked -> spatial (blocked pixels outside the cropped image are skipped). */
static inline void em_batch_space(const em_params* p, int to_blocks) {
    const int64_t* d = p->i;
    const size_t px = (size_t)d[EM_BATCH_SPACE_I_PIXEL_BYTES];
    const int64_t n = d[EM_BATCH_SPACE_I_BATCH], h = d[EM_BATCH_SPACE_I_HEIGHT], w = d[EM_BATCH_SPACE_I_WIDTH];
    const int64_t bh = d[EM_BATCH_SPACE_I_BLOCKED_HEIGHT], bw = d[EM_BATCH_SPACE_I_BLOCKED_WIDTH];
    const int64_t kh = d[EM_BATCH_SPACE_I_BLOCK_H], kw = d[EM_BATCH_SPACE_I_BLOCK_W];
    const int64_t top = d[EM_BATCH_SPACE_I_TOP], left = d[EM_BATCH_SPACE_I_LEFT];
    const uint8_t* in = (const uint8_t*)p->ptr[EM_BATCH_SPACE_P_INPUT];
    uint8_t* out = (uint8_t*)p->ptr[EM_BATCH_SPACE_P_OUTPUT];
    const uint8_t* pad = (const uint8_t*)p->ptr[EM_BATCH_SPACE_P_PAD_PIXEL];
    for (int64_t b = 0; b < n * kh * kw; b++) {
        const int64_t img = b % n, by = (b / n) / kw, bx = (b / n) % kw;
        for (int64_t y = 0; y < bh; y++) {
            const int64_t sy = y * kh + by - top;
            for (int64_t x = 0; x < bw; x++) {
                const int64_t sx = x * kw + bx - left;
                const int inside = sy >= 0 && sy < h && sx >= 0 && sx < w;
                const size_t blocked = (size_t)((b * bh + y) * bw + x) * px;
                const size_t spatial = (size_t)((img * h + sy) * w + sx) * px;
                if (to_blocks) {
                    memcpy(out + blocked, inside ? in + spatial : pad, px);
                } else if (inside) {
                    memcpy(out + spatial, in + blocked, px);
                }
            }
        }
    }
}

static void em_space_to_batch(const em_params* p) { em_batch_space(p, 1); }
static void em_batch_to_space(const em_params* p) { em_batch_space(p, 0); }
#endif
