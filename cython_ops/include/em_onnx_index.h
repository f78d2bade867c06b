/* ONNX TopK and CumSum along one axis of a tensor seen as [outer, n, inner].
 *
 * em_onnx_topk: the k largest (or smallest) values of each slice, sorted, with their int64 indices; equal values
 * keep the lower index first (onnxruntime's order); NaN is ordered above every number.  float32, int32 and int64.
 * em_onnx_cumsum: running sums along the axis, exclusive and / or reversed; float32 sums in float32 in axis
 * order (onnxruntime's order), integers wrap.
 * em_onnx_reduce_minmax_f32: ReduceMax / ReduceMin of float32 starting from -inf / +inf (LiteRT's REDUCE_MAX starts
 * from the lowest finite value, so a row of -inf would come out -FLT_MAX).
 * em_onnx_scatter: ScatterND / ScatterElements with target positions fixed at load (flat element offsets, checked
 * there): the data copied, then each update applied in order (replacing, or combined by add / mul / max / min). */
#ifndef EM_ONNX_INDEX_H
#define EM_ONNX_INDEX_H
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include "em_dtype.h"
#include "em_params.h"
#include "em_reduce.h"

/* em_onnx_topk, layout EM_ONNX_TOPK: ptr: input, values, indices (int64), scratch (n entries of 16 bytes);
 * i: outer, n, inner, k, largest, dtype (EM_DT_F32, _I32 or _I64) */
enum { EM_ONNX_TOPK_P_INPUT, EM_ONNX_TOPK_P_VALUES, EM_ONNX_TOPK_P_INDICES, EM_ONNX_TOPK_P_SCRATCH,
       EM_ONNX_TOPK_P_COUNT };
enum { EM_ONNX_TOPK_I_OUTER, EM_ONNX_TOPK_I_N, EM_ONNX_TOPK_I_INNER, EM_ONNX_TOPK_I_K, EM_ONNX_TOPK_I_LARGEST,
       EM_ONNX_TOPK_I_DTYPE, EM_ONNX_TOPK_I_COUNT };
enum { EM_ONNX_TOPK_F_COUNT = 0 };

/* em_onnx_cumsum, layout EM_ONNX_CUMSUM: ptr: input, output; i: outer, n, inner, exclusive, reverse, dtype
 * (EM_DT_F32, _I32 or _I64) */
enum { EM_ONNX_CUMSUM_P_INPUT, EM_ONNX_CUMSUM_P_OUTPUT, EM_ONNX_CUMSUM_P_COUNT };
enum { EM_ONNX_CUMSUM_I_OUTER, EM_ONNX_CUMSUM_I_N, EM_ONNX_CUMSUM_I_INNER, EM_ONNX_CUMSUM_I_EXCLUSIVE,
       EM_ONNX_CUMSUM_I_REVERSE, EM_ONNX_CUMSUM_I_DTYPE, EM_ONNX_CUMSUM_I_COUNT };
enum { EM_ONNX_CUMSUM_F_COUNT = 0 };

/* em_onnx_scatter, layout EM_ONNX_SCATTER: ptr: data, updates, positions (int64), output; i: elements (of the
 * data), updates, reduction (0 none, 1 add, 2 mul, 3 max, 4 min), dtype (EM_DT_*) */
enum { EM_ONNX_SCATTER_P_DATA, EM_ONNX_SCATTER_P_UPDATES, EM_ONNX_SCATTER_P_POSITIONS, EM_ONNX_SCATTER_P_OUTPUT,
       EM_ONNX_SCATTER_P_COUNT };
enum { EM_ONNX_SCATTER_I_ELEMENTS, EM_ONNX_SCATTER_I_UPDATES, EM_ONNX_SCATTER_I_REDUCTION, EM_ONNX_SCATTER_I_DTYPE,
       EM_ONNX_SCATTER_I_COUNT };
enum { EM_ONNX_SCATTER_F_COUNT = 0 };

/* em_onnx_reduce_minmax_f32, layout EM_ONNX_REDUCE: ptr: input, output; i: input dims (6-D), output stride of
 * each input dim (6, 0 where reduced), outputs, is_max */
enum { EM_ONNX_REDUCE_P_INPUT, EM_ONNX_REDUCE_P_OUTPUT, EM_ONNX_REDUCE_P_COUNT };
enum { EM_ONNX_REDUCE_I_DIMS, EM_ONNX_REDUCE_I_DIMS_LAST = EM_ONNX_REDUCE_I_DIMS + 5, EM_ONNX_REDUCE_I_OUT_STRIDES,
       EM_ONNX_REDUCE_I_OUT_STRIDES_LAST = EM_ONNX_REDUCE_I_OUT_STRIDES + 5, EM_ONNX_REDUCE_I_OUTPUTS,
       EM_ONNX_REDUCE_I_IS_MAX, EM_ONNX_REDUCE_I_COUNT };
enum { EM_ONNX_REDUCE_F_COUNT = 0 };

static void em_onnx_reduce_minmax_f32(const em_params* p) {
    const int64_t* dims = p->i + EM_ONNX_REDUCE_I_DIMS;
    const int64_t* ost = p->i + EM_ONNX_REDUCE_I_OUT_STRIDES;
    const float* x = (const float*)p->ptr[EM_ONNX_REDUCE_P_INPUT];
    float* y = (float*)p->ptr[EM_ONNX_REDUCE_P_OUTPUT];
    const int64_t n_out = p->i[EM_ONNX_REDUCE_I_OUTPUTS];
    int64_t k = 0;
    if (p->i[EM_ONNX_REDUCE_I_IS_MAX]) {
        for (int64_t o = 0; o < n_out; o++) y[o] = -INFINITY;
        EM_REDUCE_WALK(if (x[k] > y[ob]) y[ob] = x[k];)
    } else {
        for (int64_t o = 0; o < n_out; o++) y[o] = INFINITY;
        EM_REDUCE_WALK(if (x[k] < y[ob]) y[ob] = x[k];)
    }
}

/* One sortable entry: the value widened (double holds every float32 and int32 exactly; int64 keys compare as
 * int64) and its index along the axis. */
typedef struct { double f; int64_t i64; int64_t index; } em_topk_entry;

static int em_topk_larger_first(const void* pa, const void* pb) {
    const em_topk_entry* a = (const em_topk_entry*)pa;
    const em_topk_entry* b = (const em_topk_entry*)pb;
    const int an = isnan(a->f), bn = isnan(b->f);
    if (an != bn) return an ? -1 : 1;
    if (!an) {
        if (a->f > b->f || (a->f == b->f && a->i64 > b->i64)) return -1;
        if (a->f < b->f || (a->f == b->f && a->i64 < b->i64)) return 1;
    }
    return a->index < b->index ? -1 : (a->index > b->index);
}

static int em_topk_smaller_first(const void* pa, const void* pb) {
    const em_topk_entry* a = (const em_topk_entry*)pa;
    const em_topk_entry* b = (const em_topk_entry*)pb;
    const int an = isnan(a->f), bn = isnan(b->f);
    if (an != bn) return an ? 1 : -1;
    if (!an) {
        if (a->f < b->f || (a->f == b->f && a->i64 < b->i64)) return -1;
        if (a->f > b->f || (a->f == b->f && a->i64 > b->i64)) return 1;
    }
    return a->index < b->index ? -1 : (a->index > b->index);
}

static void em_onnx_topk(const em_params* p) {
    const int64_t outer = p->i[EM_ONNX_TOPK_I_OUTER], n = p->i[EM_ONNX_TOPK_I_N];
    const int64_t inner = p->i[EM_ONNX_TOPK_I_INNER], k = p->i[EM_ONNX_TOPK_I_K];
    const int largest = (int)p->i[EM_ONNX_TOPK_I_LARGEST], code = (int)p->i[EM_ONNX_TOPK_I_DTYPE];
    int64_t* indices = (int64_t*)p->ptr[EM_ONNX_TOPK_P_INDICES];
    em_topk_entry* e = (em_topk_entry*)p->ptr[EM_ONNX_TOPK_P_SCRATCH];
    for (int64_t o = 0; o < outer; o++)
        for (int64_t c = 0; c < inner; c++) {
            const int64_t base = o * n * inner + c;
            for (int64_t j = 0; j < n; j++) {
                const int64_t at = base + j * inner;
                e[j].index = j;
                e[j].i64 = 0;
                if (code == EM_DT_F32) e[j].f = ((const float*)p->ptr[EM_ONNX_TOPK_P_INPUT])[at];
                else if (code == EM_DT_I32) e[j].f = ((const int32_t*)p->ptr[EM_ONNX_TOPK_P_INPUT])[at];
                else { e[j].f = 0.0; e[j].i64 = ((const int64_t*)p->ptr[EM_ONNX_TOPK_P_INPUT])[at]; }
            }
            qsort(e, (size_t)n, sizeof(em_topk_entry), largest ? em_topk_larger_first : em_topk_smaller_first);
            const int64_t out_base = o * k * inner + c;
            for (int64_t j = 0; j < k; j++) {
                const int64_t at = out_base + j * inner;
                indices[at] = e[j].index;
                if (code == EM_DT_F32) ((float*)p->ptr[EM_ONNX_TOPK_P_VALUES])[at] = (float)e[j].f;
                else if (code == EM_DT_I32) ((int32_t*)p->ptr[EM_ONNX_TOPK_P_VALUES])[at] = (int32_t)e[j].f;
                else ((int64_t*)p->ptr[EM_ONNX_TOPK_P_VALUES])[at] = e[j].i64;
            }
        }
}

#define EM_CUMSUM_LOOP(T, UT)                                                                                \
    {                                                                                                        \
        const T* x = (const T*)p->ptr[EM_ONNX_CUMSUM_P_INPUT];                                               \
        T* y = (T*)p->ptr[EM_ONNX_CUMSUM_P_OUTPUT];                                                          \
        for (int64_t o = 0; o < outer; o++)                                                                  \
            for (int64_t c = 0; c < inner; c++) {                                                            \
                T acc = 0;                                                                                   \
                for (int64_t s = 0; s < n; s++) {                                                            \
                    const int64_t j = reverse ? n - 1 - s : s;                                               \
                    const int64_t at = (o * n + j) * inner + c;                                              \
                    const T v = x[at];                                                                       \
                    if (exclusive) { y[at] = acc; acc = (T)((UT)acc + (UT)v); }                              \
                    else { acc = (T)((UT)acc + (UT)v); y[at] = acc; }                                        \
                }                                                                                            \
            }                                                                                                \
    }

static void em_onnx_cumsum(const em_params* p) {
    const int64_t outer = p->i[EM_ONNX_CUMSUM_I_OUTER], n = p->i[EM_ONNX_CUMSUM_I_N];
    const int64_t inner = p->i[EM_ONNX_CUMSUM_I_INNER];
    const int exclusive = (int)p->i[EM_ONNX_CUMSUM_I_EXCLUSIVE], reverse = (int)p->i[EM_ONNX_CUMSUM_I_REVERSE];
    switch ((int)p->i[EM_ONNX_CUMSUM_I_DTYPE]) {
    case EM_DT_F32: EM_CUMSUM_LOOP(float, float) break;
    case EM_DT_I32: EM_CUMSUM_LOOP(int32_t, uint32_t) break;
    case EM_DT_I64: EM_CUMSUM_LOOP(int64_t, uint64_t) break;
    }
}
#undef EM_CUMSUM_LOOP

static void em_onnx_scatter(const em_params* p) {
    const int64_t n = p->i[EM_ONNX_SCATTER_I_ELEMENTS], count = p->i[EM_ONNX_SCATTER_I_UPDATES];
    const int reduction = (int)p->i[EM_ONNX_SCATTER_I_REDUCTION];
    const int64_t* pos = (const int64_t*)p->ptr[EM_ONNX_SCATTER_P_POSITIONS];
    EM_DT_SWITCH((int)p->i[EM_ONNX_SCATTER_I_DTYPE], {
        const T* x = (const T*)p->ptr[EM_ONNX_SCATTER_P_DATA];
        const T* u = (const T*)p->ptr[EM_ONNX_SCATTER_P_UPDATES];
        T* y = (T*)p->ptr[EM_ONNX_SCATTER_P_OUTPUT];
        for (int64_t i = 0; i < n; i++) y[i] = x[i];
        for (int64_t j = 0; j < count; j++) {
            T* at = y + pos[j];
            const T v = u[j];
            switch (reduction) {
            case 0: *at = v; break;
            case 1: *at = (T)(*at + v); break;
            case 2: *at = (T)(*at * v); break;
            case 3: *at = *at > v ? *at : v; break;
            default: *at = *at < v ? *at : v; break;
            }
        }
    })
}

#endif
