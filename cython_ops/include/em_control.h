/* Control flow: WHILE, which runs the compiled steps of its cond and body subgraphs from inside the plan's one
 * nogil loop, and the CONCATENATION of SLICEs whose begin / size are computed at run time (what TensorFlow's
 * converter lowers a TensorList write in a loop body to: list[:i] ++ item ++ list[i + 1:]). */
#ifndef EM_CONTROL_H
#define EM_CONTROL_H
#include <stdint.h>
#include <string.h>
#include "em_params.h"

/* WHILE: vars = inputs; loop { run cond; stop unless its bool; run body; vars = body outputs }; outputs = vars.
 * The loop variables live in the WHILE's output tensors, which the cond and body subgraphs read as their
 * inputs (bound there at load), so an iteration copies only what the body produced.  Body outputs that are
 * other body inputs are first copied to staging buffers, so variables may trade places.
 * ptr: cond_kernels, cond_params (the cond subgraph's engine arrays), body_kernels, body_params, cond_output
 *      (its bool), copies (int64 triples source address, destination address, bytes: the initial copies, then
 *      the staging copies, then the copies after each body run), cond_checks, body_checks (int64 addresses of
 *      the subgraphs' status areas that have checks), status (status_bytes areas: [0] its int32 set to 1 when
 *      the loop stops for want of iterations, then one per cond check and per body check, which receives a
 *      copy of the first subgraph status area found set; the loop stops there)
 * i:   cond_steps, body_steps, init_copies, stage_copies, out_copies, cond_check_count, body_check_count,
 *      status_bytes (of one status area), max_iterations, outermost (1: not inside another WHILE)
 * Iterations: an outermost WHILE allows max_iterations body runs to itself and every WHILE inside it together,
 * so nested loops cannot multiply their bounds into hours of work. */
enum { EM_WHILE_P_COND_KERNELS, EM_WHILE_P_COND_PARAMS, EM_WHILE_P_BODY_KERNELS, EM_WHILE_P_BODY_PARAMS,
       EM_WHILE_P_COND_OUTPUT, EM_WHILE_P_COPIES, EM_WHILE_P_COND_CHECKS, EM_WHILE_P_BODY_CHECKS, EM_WHILE_P_STATUS,
       EM_WHILE_P_COUNT };
enum { EM_WHILE_I_COND_STEPS, EM_WHILE_I_BODY_STEPS, EM_WHILE_I_INIT_COPIES, EM_WHILE_I_STAGE_COPIES,
       EM_WHILE_I_OUT_COPIES, EM_WHILE_I_COND_CHECK_COUNT, EM_WHILE_I_BODY_CHECK_COUNT, EM_WHILE_I_STATUS_BYTES,
       EM_WHILE_I_MAX_ITERATIONS, EM_WHILE_I_OUTERMOST, EM_WHILE_I_COUNT };
enum { EM_WHILE_F_COUNT = 0 };

/* Body runs the outermost WHILE running on this thread and those inside it have left (an invoke runs on one
 * thread; clones invoked on other threads count their own). */
static _Thread_local int64_t em_while_left;

static void em_while_copy(const int64_t* triples, int64_t n) {
    for (int64_t k = 0; k < n; k++)
        memcpy((void*)(uintptr_t)triples[3 * k + 1], (const void*)(uintptr_t)triples[3 * k],
               (size_t)triples[3 * k + 2]);
}

/* Runs a subgraph's steps; 1 when one of its checked status areas is set afterwards (copied to the WHILE's area
 * for it).  A kernel writes its area's first int32 word on every run, nonzero when the run failed (the rest of the
 * area may hold bytes of earlier tensors: the area lives only from its step on). */
static int em_while_run(const em_kernel* kernels, const em_params* params, int64_t steps, const int64_t* checks,
                        int64_t check_count, size_t area, uint8_t* areas) {
    for (int64_t k = 0; k < steps; k++) kernels[k](&params[k]);
    for (int64_t j = 0; j < check_count; j++) {
        const uint8_t* a = (const uint8_t*)(uintptr_t)checks[j];
        int32_t flag;
        memcpy(&flag, a, sizeof flag);
        if (flag) {
            memcpy(areas + j * area, a, area);
            return 1;
        }
    }
    return 0;
}

static void em_while(const em_params* p) {
    const int64_t* d = p->i;
    const em_kernel* ck = (const em_kernel*)p->ptr[EM_WHILE_P_COND_KERNELS];
    const em_params* cp = (const em_params*)p->ptr[EM_WHILE_P_COND_PARAMS];
    const em_kernel* bk = (const em_kernel*)p->ptr[EM_WHILE_P_BODY_KERNELS];
    const em_params* bp = (const em_params*)p->ptr[EM_WHILE_P_BODY_PARAMS];
    const uint8_t* cond = (const uint8_t*)p->ptr[EM_WHILE_P_COND_OUTPUT];
    const int64_t* copies = (const int64_t*)p->ptr[EM_WHILE_P_COPIES];
    const int64_t n_init = d[EM_WHILE_I_INIT_COPIES];
    const int64_t n_after = d[EM_WHILE_I_STAGE_COPIES] + d[EM_WHILE_I_OUT_COPIES];
    const int64_t nc = d[EM_WHILE_I_COND_CHECK_COUNT], nb = d[EM_WHILE_I_BODY_CHECK_COUNT];
    const size_t area = (size_t)d[EM_WHILE_I_STATUS_BYTES];
    uint8_t* status = (uint8_t*)p->ptr[EM_WHILE_P_STATUS];
    memset(status, 0, area * (size_t)(1 + nc + nb));
    if (d[EM_WHILE_I_OUTERMOST]) em_while_left = d[EM_WHILE_I_MAX_ITERATIONS];
    em_while_copy(copies, n_init);
    for (;;) {
        if (em_while_run(ck, cp, d[EM_WHILE_I_COND_STEPS], (const int64_t*)p->ptr[EM_WHILE_P_COND_CHECKS], nc, area,
                         status + area))
            return;
        if (!*cond) return;
        if (em_while_left <= 0) {
            const int32_t stopped = 1;
            memcpy(status, &stopped, sizeof stopped);
            return;
        }
        em_while_left--;
        if (em_while_run(bk, bp, d[EM_WHILE_I_BODY_STEPS], (const int64_t*)p->ptr[EM_WHILE_P_BODY_CHECKS], nb, area,
                         status + area * (size_t)(1 + nc)))
            return;
        em_while_copy(copies + 3 * n_init, n_after);
    }
}

/* CONCATENATION along `axis` of up to EM_SLICE_CONCAT_MAX_PIECES pieces, each a whole tensor or a SLICE of one
 * with begin / size vectors read at run time (size -1: to the end of that dimension, as LiteRT's SLICE).  Every
 * piece has the output's rank; shapes are padded to 6-D with leading 1s, the vectors hold `rank` entries for the
 * last `rank` dimensions.  A slice outside its source, a negative size other than -1, or a piece whose shape does
 * not fit the output's stores 1 + the piece's index in the status word (pieces + 1: they do not fill the
 * output) and zeroes the output.
 * ptr: output, status, sources (EM_SLICE_CONCAT_MAX_PIECES), begins, sizes (the same count; NULL for a whole
 *      tensor; int32 or int64 vectors)
 * i:   pieces, rank, axis (of the 6-D shape), itemsize, index_bytes (4 or 8), output dims (6), source dims
 *      (6 per piece, EM_SLICE_CONCAT_MAX_PIECES pieces; unused 0) */
#define EM_SLICE_CONCAT_MAX_PIECES 4
enum { EM_SLICE_CONCAT_P_OUTPUT, EM_SLICE_CONCAT_P_STATUS, EM_SLICE_CONCAT_P_SOURCES,
       EM_SLICE_CONCAT_P_SOURCES_LAST = EM_SLICE_CONCAT_P_SOURCES + EM_SLICE_CONCAT_MAX_PIECES - 1,
       EM_SLICE_CONCAT_P_BEGINS,
       EM_SLICE_CONCAT_P_BEGINS_LAST = EM_SLICE_CONCAT_P_BEGINS + EM_SLICE_CONCAT_MAX_PIECES - 1,
       EM_SLICE_CONCAT_P_SIZES,
       EM_SLICE_CONCAT_P_SIZES_LAST = EM_SLICE_CONCAT_P_SIZES + EM_SLICE_CONCAT_MAX_PIECES - 1,
       EM_SLICE_CONCAT_P_COUNT };
enum { EM_SLICE_CONCAT_I_PIECES, EM_SLICE_CONCAT_I_RANK, EM_SLICE_CONCAT_I_AXIS, EM_SLICE_CONCAT_I_ITEMSIZE,
       EM_SLICE_CONCAT_I_INDEX_BYTES, EM_SLICE_CONCAT_I_OUT_DIMS,
       EM_SLICE_CONCAT_I_OUT_DIMS_LAST = EM_SLICE_CONCAT_I_OUT_DIMS + 5, EM_SLICE_CONCAT_I_SOURCE_DIMS,
       EM_SLICE_CONCAT_I_SOURCE_DIMS_LAST = EM_SLICE_CONCAT_I_SOURCE_DIMS + 6 * EM_SLICE_CONCAT_MAX_PIECES - 1,
       EM_SLICE_CONCAT_I_COUNT };
enum { EM_SLICE_CONCAT_F_COUNT = 0 };

static inline int64_t em_slice_index(const void* v, int64_t j, int64_t index_bytes) {
    return index_bytes == 8 ? ((const int64_t*)v)[j] : (int64_t)((const int32_t*)v)[j];
}

/* The piece's begin and size on each of the 6 dimensions; 0 when they do not fit its source or the output. */
static int em_slice_concat_piece(const em_params* p, int64_t k, int64_t* begin, int64_t* size) {
    const int64_t* d = p->i;
    const int64_t* sd = d + EM_SLICE_CONCAT_I_SOURCE_DIMS + 6 * k;
    const int64_t* out = d + EM_SLICE_CONCAT_I_OUT_DIMS;
    const int64_t lead = 6 - d[EM_SLICE_CONCAT_I_RANK], axis = d[EM_SLICE_CONCAT_I_AXIS];
    const int64_t ib = d[EM_SLICE_CONCAT_I_INDEX_BYTES];
    const void* b = p->ptr[EM_SLICE_CONCAT_P_BEGINS + k];
    const void* s = p->ptr[EM_SLICE_CONCAT_P_SIZES + k];
    for (int64_t j = 0; j < 6; j++) {
        int64_t bj = 0, sj = sd[j];
        if (b && j >= lead) {
            bj = em_slice_index(b, j - lead, ib);
            sj = em_slice_index(s, j - lead, ib);
            if (bj < 0 || bj > sd[j]) return 0;
            if (sj == -1) sj = sd[j] - bj;
            if (sj < 0 || sj > sd[j] - bj) return 0;
        }
        if (j != axis && sj != out[j]) return 0;
        begin[j] = bj;
        size[j] = sj;
    }
    return 1;
}

static void em_slice_concat(const em_params* p) {
    const int64_t* d = p->i;
    const int64_t n = d[EM_SLICE_CONCAT_I_PIECES], axis = d[EM_SLICE_CONCAT_I_AXIS];
    const int64_t isz = d[EM_SLICE_CONCAT_I_ITEMSIZE];
    const int64_t* out = d + EM_SLICE_CONCAT_I_OUT_DIMS;
    uint8_t* y = (uint8_t*)p->ptr[EM_SLICE_CONCAT_P_OUTPUT];
    int32_t* status = (int32_t*)p->ptr[EM_SLICE_CONCAT_P_STATUS];
    int64_t begin[EM_SLICE_CONCAT_MAX_PIECES][6], size[EM_SLICE_CONCAT_MAX_PIECES][6];
    int64_t filled = 0, out_count = 1, ost[6];
    for (int j = 5; j >= 0; j--) {
        ost[j] = out_count;
        out_count *= out[j];
    }
    *status = 0;
    for (int64_t k = 0; k < n; k++) {
        if (!em_slice_concat_piece(p, k, begin[k], size[k]) || size[k][axis] > out[axis] - filled) {
            *status = (int32_t)(k + 1);
            memset(y, 0, (size_t)(out_count * isz));
            return;
        }
        filled += size[k][axis];
    }
    if (filled != out[axis]) {
        *status = (int32_t)(n + 1);
        memset(y, 0, (size_t)(out_count * isz));
        return;
    }
    filled = 0;
    for (int64_t k = 0; k < n; k++) {
        const int64_t* sd = d + EM_SLICE_CONCAT_I_SOURCE_DIMS + 6 * k;
        const int64_t* sz = size[k];
        const int64_t* bg = begin[k];
        const uint8_t* x = (const uint8_t*)p->ptr[EM_SLICE_CONCAT_P_SOURCES + k];
        int64_t sst[6], acc = 1;
        for (int j = 5; j >= 0; j--) {
            sst[j] = acc;
            acc *= sd[j];
        }
        const size_t row = (size_t)(sz[5] * isz);
        for (int64_t i0 = 0; i0 < sz[0]; i0++)
        for (int64_t i1 = 0; i1 < sz[1]; i1++)
        for (int64_t i2 = 0; i2 < sz[2]; i2++)
        for (int64_t i3 = 0; i3 < sz[3]; i3++)
        for (int64_t i4 = 0; i4 < sz[4]; i4++) {
            const int64_t idx[5] = {i0, i1, i2, i3, i4};
            int64_t src = bg[5] * sst[5], dst = (axis == 5 ? filled : 0) * ost[5];
            for (int j = 0; j < 5; j++) {
                src += (bg[j] + idx[j]) * sst[j];
                dst += (idx[j] + (j == axis ? filled : 0)) * ost[j];
            }
            if (row) memcpy(y + dst * isz, x + src * isz, row);
        }
        filled += sz[axis];
    }
}
#endif
