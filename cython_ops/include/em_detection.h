/* TFLite_Detection_PostProcess (SSD box decoding against anchors + non-max suppression) as LiteRT's custom op
 * computes it (tensorflow/lite/kernels/detection_postprocess.cc): the same float / double arithmetic, the same
 * orders and tie-breaking.  Portable scalar code only: the work is sorting and comparing a few boxes.
 *
 * - Decoding in double, each coordinate rounded to float: yc = y / y_scale * anchor_h + anchor_y,
 *   half_h = 0.5 * exp(h / h_scale) * anchor_h; box = (yc - half_h, xc - half_w, yc + half_h, xc + half_w).
 *   Quantized box encodings dequantize as ((float)q - zp) * scale, quantized scores as LiteRT's x86 Dequantize
 *   (below).  int8 operands are dequantized as their uint8 twins (LiteRT's kernel takes uint8 only).  A box is
 *   decoded when NMS first looks at it (LiteRT decodes all; its ValidateBoxes cannot fail on anchors with
 *   non-negative sizes, which the load checks).
 * - NMS of one score column: LiteRT keeps the scores >= threshold, sorts them stably by decreasing score, then
 *   takes boxes in that order, each suppressing the later ones whose IoU with it exceeds the IoU threshold.  Here
 *   the same order comes lazily (score, then anchor index: what stability means on a list in anchor order; the
 *   best few hundred picked by quickselect, then taken off a heap, more when suppression uses them up) and each
 *   candidate is compared with the boxes already selected: the same selections, with no full sort and no pass
 *   over the boxes that are never reached (SSD heads: 10^4 candidates, 10 to 100 detections).
 * - Fast NMS: each box's classes ranked by DecreasingPartialArgSort (the first maximum for one class, otherwise
 *   std::partial_sort, whose tie order libstdc++'s heap selection defines: reproduced step by step below); NMS on
 *   each box's best score; the ranks computed for the selected boxes only.  Regular NMS: NMS per class (at most
 *   min(detections_per_class, max_detections)), the selections merged stably (std::inplace_merge) into the best
 *   max_detections.
 * Output slots LiteRT leaves unwritten (past num_detections in fast NMS) are zeros here.
 *
 * Layout EM_DETECT:
 * ptr: box encodings [1, N, box_stride] (float or int8), class scores [1, N, classes_with_background] (float or
 *      int8), anchors [N, 4] (float: dequantized at load), output boxes, classes, scores, count, scratch
 * i:   N, box_stride, classes_with_background, num_classes, max_detections, max_classes_per_detection,
 *      detections_per_class, regular, box_quantized, box_zp, score_quantized, score_zp, and the byte offsets in
 *      scratch of: decoded boxes (N x 4 float), dequantized scores (N x classes_with_background float), a score
 *      column (N float), the candidate heap (N uint64 keys), selected (N int32), class ranks of one box
 *      (num_classes int32), merged detections (2 x max_detections + 1 (int32, float) pairs and as many again),
 *      decoded flags (N bytes), the selected boxes by coordinate (5 x capacity float); then that capacity
 *      (min(N, max_detections): no NMS selects more)
 * f:   box_scale, score_scale, y_scale, x_scale, h_scale, w_scale, score_threshold, iou_threshold */
#ifndef EM_DETECTION_H
#define EM_DETECTION_H
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "em_params.h"

enum { EM_DETECT_P_BOXES, EM_DETECT_P_SCORES, EM_DETECT_P_ANCHORS, EM_DETECT_P_OUT_BOXES, EM_DETECT_P_OUT_CLASSES,
       EM_DETECT_P_OUT_SCORES, EM_DETECT_P_OUT_COUNT, EM_DETECT_P_SCRATCH, EM_DETECT_P_COUNT };
enum { EM_DETECT_I_BOXES, EM_DETECT_I_BOX_STRIDE, EM_DETECT_I_CLASSES_WITH_BACKGROUND, EM_DETECT_I_NUM_CLASSES,
       EM_DETECT_I_MAX_DETECTIONS, EM_DETECT_I_MAX_CLASSES_PER_DETECTION, EM_DETECT_I_DETECTIONS_PER_CLASS,
       EM_DETECT_I_REGULAR, EM_DETECT_I_BOX_QUANTIZED, EM_DETECT_I_BOX_ZP, EM_DETECT_I_SCORE_QUANTIZED,
       EM_DETECT_I_SCORE_ZP, EM_DETECT_I_OFF_DECODED, EM_DETECT_I_OFF_SCORES, EM_DETECT_I_OFF_COLUMN,
       EM_DETECT_I_OFF_HEAP, EM_DETECT_I_OFF_SELECTED, EM_DETECT_I_OFF_CLASS_RANKS, EM_DETECT_I_OFF_DETECTIONS,
       EM_DETECT_I_OFF_DECODED_FLAGS, EM_DETECT_I_OFF_SELECTED_BOXES, EM_DETECT_I_SELECTED_CAPACITY,
       EM_DETECT_I_COUNT };
enum { EM_DETECT_F_BOX_SCALE, EM_DETECT_F_SCORE_SCALE, EM_DETECT_F_Y_SCALE, EM_DETECT_F_X_SCALE, EM_DETECT_F_H_SCALE,
       EM_DETECT_F_W_SCALE, EM_DETECT_F_SCORE_THRESHOLD, EM_DETECT_F_IOU_THRESHOLD, EM_DETECT_F_COUNT };

typedef struct { int32_t index; float score; } em_detection;

/* std::max<float>(a, b) and std::min<float>(a, b), NaN and signed-zero behaviour included */
static inline float em_det_max(float a, float b) { return a < b ? b : a; }
static inline float em_det_min(float a, float b) { return b < a ? b : a; }

/* libstdc++'s heap primitives with the comparator "values[a] > values[b]": the hole is sifted down to a leaf
 * along the preferred child, then the value is pushed up from there (__adjust_heap + __push_heap). */
static void em_det_heap_adjust(const float* values, int32_t* h, int64_t hole, int64_t len, int32_t value) {
    const int64_t top = hole;
    int64_t child = hole;
    while (child < (len - 1) / 2) {
        child = 2 * (child + 1);
        if (values[h[child]] > values[h[child - 1]]) child--;
        h[hole] = h[child];
        hole = child;
    }
    if ((len & 1) == 0 && child == (len - 2) / 2) {
        child = 2 * (child + 1);
        h[hole] = h[child - 1];
        hole = child - 1;
    }
    int64_t parent = (hole - 1) / 2;
    while (hole > top && values[h[parent]] > values[value]) {
        h[hole] = h[parent];
        hole = parent;
        parent = (hole - 1) / 2;
    }
    h[hole] = value;
}

/* std::partial_sort(idx, idx + k, idx + n) on iota indices, decreasing values: heap select, then sort the heap. */
static void em_det_partial_sort(const float* values, int32_t* idx, int64_t k, int64_t n) {
    for (int64_t i = 0; i < n; i++) idx[i] = (int32_t)i;
    if (k >= 2)
        for (int64_t parent = (k - 2) / 2; ; parent--) {
            em_det_heap_adjust(values, idx, parent, k, idx[parent]);
            if (parent == 0) break;
        }
    for (int64_t i = k; i < n; i++)
        if (values[idx[i]] > values[idx[0]]) {
            const int32_t v = idx[i];
            idx[i] = idx[0];
            em_det_heap_adjust(values, idx, 0, k, v);
        }
    for (int64_t last = k - 1; last > 0; last--) {
        const int32_t v = idx[last];
        idx[last] = idx[0];
        em_det_heap_adjust(values, idx, 0, last, v);
    }
}

/* The class of a box's best score (ArgMaxVector): the first index of the largest value.  A NaN score never wins
 * (a row of NaN gives index 0 and a NaN score, below every threshold): LiteRT's x86 build agrees for up to three
 * classes; from four on its vectorized loop (NEON intrinsics through NEON_2_SSE) lets a NaN in its first lane
 * decide, at times reading scores[INT32_MAX]: not reproduced.  Without NaN both give the first maximum. */
static int32_t em_det_argmax(const float* values, int64_t n) {
    float best = -INFINITY;
    int32_t at = 0;
    for (int64_t i = 0; i < n; i++)
        if (values[i] > best) { best = values[i]; at = (int32_t)i; }
    return at;
}

/* One anchor's box from its encoding (y, x, h, w against the anchor), as LiteRT's DecodeCenterSizeBoxes. */
static void em_det_decode(const em_params* p, int64_t b, float* box) {
    const int64_t* q = p->i;
    const float* f = p->f;
    float e[4];
    if (q[EM_DETECT_I_BOX_QUANTIZED]) {
        const int8_t* src = (const int8_t*)p->ptr[EM_DETECT_P_BOXES] + b * q[EM_DETECT_I_BOX_STRIDE];
        const float box_zp = (float)q[EM_DETECT_I_BOX_ZP], box_scale = f[EM_DETECT_F_BOX_SCALE];
        for (int k = 0; k < 4; k++) e[k] = ((float)src[k] - box_zp) * box_scale;
    } else {
        memcpy(e, (const float*)p->ptr[EM_DETECT_P_BOXES] + b * q[EM_DETECT_I_BOX_STRIDE], sizeof(e));
    }
    const float* a = (const float*)p->ptr[EM_DETECT_P_ANCHORS] + 4 * b;       /* y, x, h, w */
    const float yc = (float)((double)e[0] / (double)f[EM_DETECT_F_Y_SCALE] * (double)a[2] + (double)a[0]);
    const float xc = (float)((double)e[1] / (double)f[EM_DETECT_F_X_SCALE] * (double)a[3] + (double)a[1]);
    const float half_h = (float)(0.5 * exp((double)e[2] / (double)f[EM_DETECT_F_H_SCALE]) * (double)a[2]);
    const float half_w = (float)(0.5 * exp((double)e[3] / (double)f[EM_DETECT_F_W_SCALE]) * (double)a[3]);
    box[0] = yc - half_h;
    box[1] = xc - half_w;
    box[2] = yc + half_h;
    box[3] = xc + half_w;
}

/* A candidate as one integer key whose decreasing order is the stable decreasing sort's order: the score's bits
 * mapped to an increasing unsigned code in the high half (-0 taken as +0: they compare equal; NaN never passes the
 * threshold), the complement of the anchor index in the low half (the lower index first among equal scores: the
 * kept list is in anchor order, so stability means exactly this). */
static inline uint64_t em_det_key(float score, int64_t index) {
    union { float f; uint32_t u; } bits = {score == 0.0f ? 0.0f : score};
    const uint32_t code = bits.u & 0x80000000u ? ~bits.u : bits.u | 0x80000000u;
    return (uint64_t)code << 32 | (uint32_t)~(uint32_t)index;
}

static inline int32_t em_det_key_index(uint64_t key) { return (int32_t)~(uint32_t)key; }

/* max-heap of keys */
static void em_det_sift_down(uint64_t* heap, int64_t n, int64_t hole) {
    const uint64_t value = heap[hole];
    for (;;) {
        int64_t child = 2 * hole + 1;
        if (child >= n) break;
        child += child + 1 < n && heap[child + 1] > heap[child];
        if (heap[child] <= value) break;
        heap[hole] = heap[child];
        hole = child;
    }
    heap[hole] = value;
}

/* Moves the m largest of the distinct keys a[0..n) to a[0..m), in any order (quickselect, Hoare partitions
 * around a median of three). */
static void em_det_select_top(uint64_t* a, int64_t n, int64_t m) {
    int64_t lo = 0, hi = n;
    while (hi - lo > 16) {
        uint64_t p0 = a[lo], p1 = a[lo + (hi - lo) / 2], p2 = a[hi - 1], t;
        if (p0 > p1) { t = p0; p0 = p1; p1 = t; }
        if (p1 > p2) { p1 = p2; }
        const uint64_t pivot = p0 > p1 ? p0 : p1;        /* the median: neither the largest nor the smallest */
        int64_t i = lo - 1, j = hi;
        for (;;) {
            do i++; while (a[i] > pivot);
            do j--; while (a[j] < pivot);
            if (i >= j) break;
            t = a[i]; a[i] = a[j]; a[j] = t;
        }
        /* a[lo..j] >= pivot >= a[j+1..hi) */
        if (m < j + 1) hi = j + 1;
        else if (m > j + 1) lo = j + 1;
        else return;
    }
    for (int64_t i = lo + 1; i < hi; i++) {                /* a short range: sorted, largest first */
        const uint64_t v = a[i];
        int64_t j = i;
        for (; j > lo && a[j - 1] < v; j--) a[j] = a[j - 1];
        a[j] = v;
    }
}

typedef struct {
    const em_params* p;
    float* decoded;           /* [N][4], filled on first use */
    uint8_t* is_decoded;      /* [N] */
    uint64_t* heap;           /* [N] candidate keys */
    float* selected_boxes;    /* ymin, xmin, ymax, xmax, area of the selected boxes: 5 rows of `capacity` */
    int64_t capacity;
    int64_t n;
    float score_threshold, iou_threshold;
} em_det_nms;

static const float* em_det_box(const em_det_nms* s, int64_t b) {
    float* box = s->decoded + 4 * b;
    if (!s->is_decoded[b]) {
        em_det_decode(s->p, b, box);
        s->is_decoded[b] = 1;
    }
    return box;
}

/* Whether box's IoU with one of the first `count` selected boxes exceeds the threshold, each IoU as LiteRT's
 * ComputeIntersectionOverUnion(selected, box) computes it (0 when an area is <= 0, else intersection / (area_sel +
 * area_box - intersection)), over the selected boxes held by coordinate: a loop without exits, vectorized. */
static int em_det_overlaps(const em_det_nms* s, int64_t count, const float* box) {
    const int64_t cap = s->capacity;
    const float* ymin_s = s->selected_boxes;
    const float* xmin_s = ymin_s + cap;
    const float* ymax_s = xmin_s + cap;
    const float* xmax_s = ymax_s + cap;
    const float* area_s = xmax_s + cap;
    const float area_b = (box[2] - box[0]) * (box[3] - box[1]);
    const float threshold = s->iou_threshold;
    if (area_b <= 0) return 0;
    int overlaps = 0;
    for (int64_t k = 0; k < count; k++) {
        const float ymin = em_det_max(ymin_s[k], box[0]), xmin = em_det_max(xmin_s[k], box[1]);
        const float ymax = em_det_min(ymax_s[k], box[2]), xmax = em_det_min(xmax_s[k], box[3]);
        const float inter = em_det_max(ymax - ymin, 0.0f) * em_det_max(xmax - xmin, 0.0f);
        const float iou = inter / (area_s[k] + area_b - inter);
        overlaps |= !(area_s[k] <= 0) & (iou > threshold);
    }
    return overlaps;
}

/* NMS of one score column, as LiteRT's NonMaxSuppressionSingleClassHelper decides it: scores >= threshold, in
 * stable decreasing order, each taken unless its IoU with an already selected box exceeds the threshold, until
 * max_out are taken.  The candidates come lazily off a heap in that order (no full sort) and each is compared with
 * the selected boxes only (LiteRT suppresses the rest of the list after each selection: the same decisions, with
 * the IoU's operands in the same order).  Writes at most max_out box indices to selected, returns how many. */
static int64_t em_det_single_class(const em_det_nms* s, const float* scores, int64_t max_out, int32_t* selected) {
    uint64_t* heap = s->heap;
    int64_t kept = 0;
    const float threshold = s->score_threshold;
    for (int64_t i = 0; i < s->n; i++)
        if (scores[i] >= threshold) heap[kept++] = em_det_key(scores[i], i);
    if (kept == 0 || max_out <= 0) return 0;
    /* the candidates in rounds: the best `take` of those left selected, then taken in order off a heap; a round
     * twice as large whenever suppression used up the last one */
    int64_t count = 0, start = 0, take = 4 * max_out + 60;
    while (count < max_out && start < kept) {
        uint64_t* round = heap + start;
        int64_t left = take < kept - start ? take : kept - start;
        if (left < kept - start) em_det_select_top(round, kept - start, left);
        start += left;
        take *= 2;
        for (int64_t parent = left / 2 - 1; parent >= 0; parent--) em_det_sift_down(round, left, parent);
        while (left > 0 && count < max_out) {
            const int32_t candidate = em_det_key_index(round[0]);
            round[0] = round[--left];
            em_det_sift_down(round, left, 0);
            const float* box = em_det_box(s, candidate);
            if (!em_det_overlaps(s, count, box)) {
                float* sel = s->selected_boxes + count;
                sel[0] = box[0];
                sel[s->capacity] = box[1];
                sel[2 * s->capacity] = box[2];
                sel[3 * s->capacity] = box[3];
                sel[4 * s->capacity] = (box[2] - box[0]) * (box[3] - box[1]);
                selected[count++] = candidate;
            }
        }
    }
    return count;
}

/* Merges the two runs dets[0..mid) and dets[mid..end), each by decreasing score, stably (tmp: end entries). */
static void em_det_merge(em_detection* dets, em_detection* tmp, int64_t mid, int64_t end) {
    int64_t l = 0, r = mid, k = 0;
    while (l < mid && r < end) tmp[k++] = dets[r].score > dets[l].score ? dets[r++] : dets[l++];
    while (l < mid) tmp[k++] = dets[l++];
    while (r < end) tmp[k++] = dets[r++];
    memcpy(dets, tmp, (size_t)end * sizeof(em_detection));
}

/* Each box's best class score as LiteRT's fast NMS takes it (row[rank[0]] of DecreasingPartialArgSort): the
 * largest value of a row without NaN, else the ranking's own first pick (rank: C int32).  Quantized scores hold
 * no NaN; float ones are looked at once for any. */
static void em_det_best_scores(const float* scores, int64_t N, int64_t CB, int64_t label_offset, int64_t C,
                               int64_t per_box, int may_hold_nan, int32_t* rank, float* column) {
    for (int64_t b = 0; b < N; b++) {
        const float* row = scores + b * CB + label_offset;
        float best = row[0];
        for (int64_t c = 1; c < C; c++) best = row[c] > best ? row[c] : best;
        column[b] = best;
    }
    if (!may_hold_nan) return;
    int any_nan = 0;
    for (int64_t k = 0; k < N * CB; k++) any_nan |= scores[k] != scores[k];
    if (!any_nan) return;
    for (int64_t b = 0; b < N; b++) {
        const float* row = scores + b * CB + label_offset;
        int row_nan = 0;
        for (int64_t c = 0; c < C; c++) row_nan |= row[c] != row[c];
        if (!row_nan) continue;
        if (per_box == 1) rank[0] = em_det_argmax(row, C);
        else em_det_partial_sort(row, rank, per_box, C);
        column[b] = row[rank[0]];
    }
}

static void em_detection_postprocess(const em_params* p) {
    const int64_t* q = p->i;
    const float* f = p->f;
    const int64_t N = q[EM_DETECT_I_BOXES];
    const int64_t CB = q[EM_DETECT_I_CLASSES_WITH_BACKGROUND], C = q[EM_DETECT_I_NUM_CLASSES];
    const int64_t label_offset = CB - C;
    const int64_t max_det = q[EM_DETECT_I_MAX_DETECTIONS], max_cls = q[EM_DETECT_I_MAX_CLASSES_PER_DETECTION];
    uint8_t* scratch = (uint8_t*)p->ptr[EM_DETECT_P_SCRATCH];
    float* decoded = (float*)(scratch + q[EM_DETECT_I_OFF_DECODED]);
    float* out_boxes = (float*)p->ptr[EM_DETECT_P_OUT_BOXES];
    float* out_classes = (float*)p->ptr[EM_DETECT_P_OUT_CLASSES];
    float* out_scores = (float*)p->ptr[EM_DETECT_P_OUT_SCORES];
    const int64_t out_slots = max_det * max_cls;
    memset(out_boxes, 0, (size_t)out_slots * 4 * sizeof(float));
    memset(out_classes, 0, (size_t)out_slots * sizeof(float));
    memset(out_scores, 0, (size_t)out_slots * sizeof(float));

    const float* scores = (const float*)p->ptr[EM_DETECT_P_SCORES];
    if (q[EM_DETECT_I_SCORE_QUANTIZED]) {
        float* deq = (float*)(scratch + q[EM_DETECT_I_OFF_SCORES]);
        const int8_t* src = (const int8_t*)p->ptr[EM_DETECT_P_SCORES];
        /* as uint8 (value and zero point + 128): LiteRT's Dequantize takes its NEON body, through NEON_2_SSE on
         * x86, for every whole block of 8 (q * scale + (-zp * scale), two float roundings), the scalar loop
         * (scale * (q - zp) in double) for the rest */
        const int32_t zp = (int32_t)q[EM_DETECT_I_SCORE_ZP] + 128;
        const double scale = f[EM_DETECT_F_SCORE_SCALE];
        const float scale_f = (float)scale, zero_times_scale = (float)(-(double)zp * scale);
        const int64_t total = N * CB, blocked = total / 8 * 8;
        int64_t k = 0;
        for (; k < blocked; k++) {
            const float product = (float)((int32_t)src[k] + 128) * scale_f;
            deq[k] = product + zero_times_scale;
        }
        for (; k < total; k++) deq[k] = (float)(scale * (double)((int32_t)src[k] + 128 - zp));
        scores = deq;
    }

    uint8_t* is_decoded = scratch + q[EM_DETECT_I_OFF_DECODED_FLAGS];
    memset(is_decoded, 0, (size_t)N);
    em_det_nms nms = {p, decoded, is_decoded, (uint64_t*)(scratch + q[EM_DETECT_I_OFF_HEAP]),
                      (float*)(scratch + q[EM_DETECT_I_OFF_SELECTED_BOXES]), q[EM_DETECT_I_SELECTED_CAPACITY], N,
                      f[EM_DETECT_F_SCORE_THRESHOLD], f[EM_DETECT_F_IOU_THRESHOLD]};
    float* column = (float*)(scratch + q[EM_DETECT_I_OFF_COLUMN]);
    int32_t* selected = (int32_t*)(scratch + q[EM_DETECT_I_OFF_SELECTED]);
    int64_t found = 0;
    if (q[EM_DETECT_I_REGULAR]) {
        const int64_t per_class = q[EM_DETECT_I_DETECTIONS_PER_CLASS] < max_det ?
                                  q[EM_DETECT_I_DETECTIONS_PER_CLASS] : max_det;
        em_detection* dets = (em_detection*)(scratch + q[EM_DETECT_I_OFF_DETECTIONS]);
        em_detection* tmp = dets + 2 * max_det + 1;
        for (int64_t c = 0; c < C; c++) {
            for (int64_t b = 0; b < N; b++) column[b] = scores[b * CB + c + label_offset];
            const int64_t n_sel = em_det_single_class(&nms, column, per_class, selected);
            if (n_sel == 0) continue;
            for (int64_t k = 0; k < n_sel; k++) {
                dets[found + k].score = column[selected[k]];
                dets[found + k].index = (int32_t)(selected[k] * CB + c + label_offset);
            }
            em_det_merge(dets, tmp, found, found + n_sel);
            found = found + n_sel < max_det ? found + n_sel : max_det;
        }
        for (int64_t k = 0; k < found; k++) {
            const int64_t anchor = dets[k].index / CB;
            memcpy(out_boxes + 4 * k, decoded + 4 * anchor, 4 * sizeof(float));
            out_classes[k] = (float)(dets[k].index - anchor * CB - label_offset);
            out_scores[k] = dets[k].score;
        }
    } else {
        const int64_t per_box = max_cls < C ? max_cls : C;
        int32_t* rank = (int32_t*)(scratch + q[EM_DETECT_I_OFF_CLASS_RANKS]);
        em_det_best_scores(scores, N, CB, label_offset, C, per_box, !q[EM_DETECT_I_SCORE_QUANTIZED], rank, column);
        found = em_det_single_class(&nms, column, max_det, selected);
        /* the class ranks of the selected boxes only */
        for (int64_t k = 0; k < found; k++) {
            const int64_t b = selected[k];
            const float* row = scores + b * CB + label_offset;
            if (per_box == 1) rank[0] = em_det_argmax(row, C);
            else em_det_partial_sort(row, rank, per_box, C);
            for (int64_t c = 0; c < per_box; c++) {
                const int64_t slot = max_cls * k + c;
                memcpy(out_boxes + 4 * slot, decoded + 4 * b, 4 * sizeof(float));
                out_classes[slot] = (float)rank[c];
                out_scores[slot] = row[rank[c]];
            }
        }
    }
    *(float*)p->ptr[EM_DETECT_P_OUT_COUNT] = (float)found;
}

#endif
