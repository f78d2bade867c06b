# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The whole int8 CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED prepare of the common TFLite case in one call each
(issue 15): the shell's reading and checks (load_shell), the output shape, the bias, the packing (load_prepare /
load_depthwise; the Winograd conv's: load_winograd) and the step, without the Python glue between them.  Their twins
are the Python prepares (ops/conv.py prepare_conv2d_int8 / prepare_conv_int8 / prepare_conv_int8_winograd /
prepare_depthwise_rows, ops/fully_connected.py prepare_fully_connected_int8 / fully_connected_int8_step), which run
wherever these hand back the shell's values (uint8 models, sparse Winograd candidates, the portable depthwise kernel,
a bias the Python checks must refuse) or None (the shell declined); tests/test_load_fast_paths.py and
test_load_winograd.py compare the plans of both.  The runtime's own pieces (the Step class, the sparse step, the
error classes' messages) are handed in once by ops/conv.py (use_runtime): cython_ops imports nothing from edgeml.
Not kernels: no KERNELS table."""
from libc.stdint cimport int8_t, int64_t


from cython_ops.load_buffer cimport buffer_address, buffer_bytes, same_dtype

from cython_ops import load_depthwise, load_pack, load_prepare, load_shell, load_winograd

# the runtime's pieces (use_runtime): set once when edgeml.runtime.ops.conv is imported
cdef object Step = None
cdef object sparse_candidate = None
cdef object sparse_step = None
cdef object fully_connected_as_conv = None
cdef object column_source_type = None
cdef object column_requant_type = None
cdef object pack_gemm_timed = None
cdef object pack_depthwise_timed = None
cdef object overflow_error = None
cdef object profiling = None            # load_profile.ACTIVE: non-empty while stages are timed
cdef object row_kernels = None          # packing_depthwise.ROW_KERNELS
cdef object packing_depthwise = None    # (its BAND_BYTES read per call: tests vary it)
cdef object as_1x1_conv = None
cdef object int32_dtype = None
cdef object float32_dtype = None
cdef object float64_dtype = None
cdef dict no_floats = None
cdef object uint8_type = None           # numpy.uint8, as the packers name their blocks' type
cdef object uint8_dtype = None
cdef object int16_dtype = None
cdef object np_empty = None, np_ndarray = None
cdef int64_t keep_align = 64, keep_pool_bytes = 1 << 16, keep_pool_largest = 4096     # plan.py's kept-array pool
cdef int64_t im2col_rows = 64, vnni_chunk_bytes = 16384, vnni_slack = 64, align = 64
cdef int64_t avx2_big_weight_bytes = 262144, avx2_big_chunk_bytes = 131072
cdef int64_t winograd_min_ic = 12, winograd_max_ic = 3600, depthwise_as_conv_min = 4
cdef int64_t block_cols = 16, block_depth = 4       # packing_sparse's blocks
cdef int requant_float = 3, requant_double_scale = 2

cdef enum:      # packing_gemm's layouts
    PLAIN = 0
    VNNI = 1
    AVX2 = 2
    AVX2_S8 = 3
    SPARSE_VNNI = 4


cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    /* Whether w [n][k] (contiguous int8) cut into cols x depth blocks has a density of nonzero blocks at most
     * `limit` (load_pack.count_nonzero_blocks_s8's count: each run of `segment` K values (0: all K; K a multiple of
     * it) zero-padded to a multiple of depth on its own; compared as sparse_gemm's wants_sparse does): a block is
     * decided by its first nonzero row (dense weights: the group's first row), and the count stops as soon as it is
     * past the limit (it only grows). */
    static int em_sparse_enough(const int8_t* w, int64_t n, int64_t k, int64_t cols, int64_t depth, int64_t segment,
                                double limit) {
        if (segment <= 0 || k == 0) segment = k > 0 ? k : 1;
        const int64_t per = (segment + depth - 1) / depth;
        const int64_t groups = (n + cols - 1) / cols, kblocks = (k / segment) * per;
        const double total = (double)(groups * kblocks);
        int64_t count = 0;
        if (groups * kblocks == 0) return 1.0 <= limit;
        for (int64_t g = 0; g < groups; g++) {
            const int64_t last = n < (g + 1) * cols ? n : (g + 1) * cols;
            for (int64_t kb = 0; kb < kblocks; kb++) {
                const int64_t b = kb % per, j0 = (kb / per) * segment + b * depth;
                const int64_t width = segment - b * depth < depth ? segment - b * depth : depth;
                int nonzero = 0;
                for (int64_t r = g * cols; r < last && !nonzero; r++) {
                    const int8_t* p = w + r * k + j0;
                    if (width == 4) {
                        uint32_t word;
                        memcpy(&word, p, 4);
                        nonzero = word != 0;
                    } else
                        for (int64_t j = 0; j < width; j++) nonzero |= p[j] != 0;
                }
                count += nonzero;
            }
            if ((double)count / total > limit) return 0;
        }
        return (double)count / total <= limit;
    }
    """
    bint sparse_enough "em_sparse_enough"(const int8_t* w, int64_t n, int64_t k, int64_t cols, int64_t depth,
                                          int64_t segment, double limit) noexcept nogil


def use_runtime(step, candidate, sparse, fc_as_conv, column_source, column_requant, pack_gemm, depthwise_packing,
                overflow, active, fc_geometry, int32, float32, float64, floats, dict constants):
    """The runtime's pieces these prepares build with (edgeml/runtime/ops/conv.py hands them in at import)."""
    global Step, sparse_candidate, sparse_step, fully_connected_as_conv, column_source_type, pack_gemm_timed
    global column_requant_type, float64_dtype
    global pack_depthwise_timed, overflow_error, profiling, row_kernels, as_1x1_conv, int32_dtype, float32_dtype
    global no_floats, im2col_rows, vnni_chunk_bytes, vnni_slack, align, avx2_big_weight_bytes, packing_depthwise
    global avx2_big_chunk_bytes, winograd_min_ic
    global winograd_max_ic, depthwise_as_conv_min, requant_float, requant_double_scale
    global uint8_type, uint8_dtype, int16_dtype, block_cols, block_depth, np_empty, np_ndarray, keep_align
    global keep_pool_bytes, keep_pool_largest
    Step, sparse_candidate, sparse_step, fully_connected_as_conv = step, candidate, sparse, fc_as_conv
    column_source_type, pack_gemm_timed = column_source, pack_gemm
    packing_depthwise, pack_depthwise_timed = depthwise_packing, depthwise_packing.pack_depthwise_rows
    column_requant_type, float64_dtype = column_requant, float64
    overflow_error, profiling, row_kernels, as_1x1_conv = overflow, active, depthwise_packing.ROW_KERNELS, fc_geometry
    int32_dtype, float32_dtype, no_floats = int32, float32, floats
    im2col_rows, vnni_chunk_bytes = constants["im2col_rows"], constants["vnni_chunk_bytes"]
    vnni_slack, align = constants["vnni_slack"], constants["align"]
    avx2_big_weight_bytes = constants["avx2_big_weight_bytes"]
    avx2_big_chunk_bytes = constants["avx2_big_chunk_bytes"]
    winograd_min_ic, winograd_max_ic = constants["winograd_min_ic"], constants["winograd_max_ic"]
    depthwise_as_conv_min = constants["depthwise_as_conv_min"]
    requant_float, requant_double_scale = constants["requant_float"], constants["requant_double_scale"]
    uint8_type, np_empty, np_ndarray = constants["uint8"], constants["empty"], constants["ndarray"]
    uint8_dtype = np_empty(0, uint8_type).dtype
    int16_dtype = constants["int16"]
    block_cols, block_depth = constants["block_cols"], constants["block_depth"]
    keep_align, keep_pool_bytes = constants["keep_align"], constants["keep_pool_bytes"]
    keep_pool_largest = constants["keep_pool_largest"]


cdef Py_ssize_t lead_to_aligned(raw):
    """Bytes from raw's first byte to the next keep_align boundary (Python's -address % keep_align)."""
    cdef size_t address = buffer_address(raw)
    return <Py_ssize_t>((keep_align - <int64_t>(address % <size_t>keep_align)) % keep_align)


cdef object keep_fitting(ctx, tuple shape, dtype, Py_ssize_t nbytes):
    """Ctx.keep_new(shape, dtype) (nbytes: its size) for a request the caller has checked against the weight
    budget: the same huge-page region, pool and alignment, without its Python frame."""
    ctx.weight_bytes = ctx.weight_bytes + nbytes
    cdef Py_ssize_t at
    region = ctx.pages
    if region is not None:      # a large model's kept arrays on huge pages (edgeml/pages.py)
        taken = region.take(nbytes, keep_align)
        if taken is not None:
            out = np_ndarray(shape, dtype, taken[0], taken[1])
            ctx.keep.append(out)
            return out
    if nbytes > keep_pool_largest:
        raw = np_empty(nbytes + keep_align, uint8_type)
        out = np_ndarray(shape, dtype, raw, lead_to_aligned(raw))
    else:       # small blocks side by side in the context's shared pool (Ctx.keep_new)
        pool = ctx.keep_pool
        if pool is None or pool[1] + nbytes > keep_pool_bytes:
            raw = np_empty(keep_pool_bytes + keep_align, uint8_type)
            pool = [raw, lead_to_aligned(raw)]
            ctx.keep_pool = pool
        at = pool[1]
        out = np_ndarray(shape, dtype, pool[0], at)
        pool[1] = at + (max(nbytes, 1) + keep_align - 1) // keep_align * keep_align
    ctx.keep.append(out)
    return out


cdef class Keeper:
    """Ctx.keep_new (edgeml/runtime/plan.py) for the packers' one uint8 block per op, without its Python frame: the
    same budget, pool and alignment; any other request, and one past the weight budget (which it refuses with its
    message), goes to ctx.keep_new itself."""
    cdef object ctx

    def __init__(self, ctx):
        self.ctx = ctx

    def __call__(self, shape, dtype):
        ctx = self.ctx
        if dtype is not uint8_type or type(shape) is not tuple or len(shape) != 1 or type(shape[0]) is not int:
            return ctx.keep_new(shape, dtype)
        cdef Py_ssize_t nbytes = shape[0]
        if nbytes < 0:
            return ctx.keep_new(shape, dtype)
        if ctx.weight_bytes + nbytes > ctx.max_weight_bytes:
            return ctx.keep_new(shape, dtype)
        return keep_fitting(ctx, shape, uint8_dtype, nbytes)


cdef class BoundGemm:
    """A GEMM step's make(addr): the packed block's pointer slots, then input, output and scratch from addr (what
    the Python prepares' make closures return)."""
    cdef dict pointers
    cdef object x, y
    cdef dict ints, floats

    def __init__(self, dict pointers, x, y, dict ints, dict floats):
        self.pointers, self.x, self.y, self.ints, self.floats = pointers, x, y, ints, floats

    def __call__(self, addr):
        ptrs = dict(self.pointers)
        ptrs["input"] = addr(self.x)
        ptrs["output"] = addr(self.y)
        ptrs["scratch"] = addr("scratch")
        return ptrs, self.ints, self.floats


cdef dict step_ints(dict ints, int64_t direct, int64_t chunk, int64_t kp, int64_t threads, int64_t slice_bytes):
    """A copy of the conv integers with the step's own (dict(ints, direct=..., ...), without the keyword dict)."""
    out = dict(ints)
    out["direct"] = direct
    out["chunk"] = chunk
    out["kp"] = kp
    out["threads"] = threads
    out["slice_bytes"] = slice_bytes
    return out


cdef inline int64_t cdiv(int64_t a, int64_t b) noexcept:
    """Python's -(-a // b) for b > 0 (C division truncates toward zero)."""
    cdef int64_t q = a // b
    return q + 1 if q * b < a else q


cdef inline int64_t round_up(int64_t a, int64_t to) noexcept:
    return cdiv(a, to) * to


cdef object plain_bias(ctx, op, int64_t n_out):
    """(True, the bias vector or None) when the op's bias is what bias_vector takes without a word (an int32
    constant of n_out values, or none); (False, None) for anything bias_vector must refuse, with its message."""
    inputs = op.inputs
    if len(inputs) <= 2 or inputs[2] < 0:
        return True, None
    data = ctx.constants.get(inputs[2])
    if data is None:
        return False, None
    dtype = data.dtype
    if dtype is not int32_dtype and dtype != int32_dtype or data.size != n_out:
        return False, None
    return True, (data if data.ndim == 1 else data.reshape(-1))     # (one-dimensional: no new view)


cdef tuple gemm_pack(ctx, op, w2, bias, double s_in, ws, double s_out, given, int64_t in_zp, int64_t w_zp, bint wrap,
                     int layout, int64_t segment, tuple sparse_args):
    """packing_gemm.pack_gemm: (layout packed, kp, the pointer slots)."""
    if profiling:       # (the profile's "weight packing" stage: the timed Python form, the same call)
        source = column_source_type(0, 0, 0, 0, w_zp, 0, s_in, ws, s_out, given)
        return pack_gemm_timed(ctx, op, w2, bias, source, in_zp, wrap, layout, segment, *sparse_args)
    try:
        block, layout, kp, offsets = load_prepare.pack_gemm_int8(
            Keeper(ctx), w2, bias, s_in, ws, s_out, ctx.rounding, given, in_zp, w_zp, wrap, layout, segment,
            *sparse_args)
    except OverflowError:
        raise overflow_error(op) from None
    base = buffer_address(block)
    w, b, mult, shift, scale64, scale32, start, block_k = offsets
    pointers = {"weights": base + w, "bias": base + b, "mult": base + mult, "shift": base + shift,
                "double_scales": base + scale64, "float_scales": base + scale32}
    if start >= 0:
        pointers["group_start"] = base + start
        pointers["block_k"] = base + block_k
    return layout, kp, pointers


def int8_conv_step(ctx, op, bint depthwise, str conv_kernel, str depthwise_kernel, int64_t conv_thread_macs,
                   int64_t depthwise_thread_macs, uint8_option, requant_option, int8_dtype, float64_dtype, int64_dtype):
    """ops/conv.prepare_conv2d's int8 step in one call: a Step; or the shell's values (load_shell.int8_conv_shell)
    for the forms the Python prepare builds (uint8, sparse Winograd candidates, the portable depthwise kernel, a
    bias it refuses);
    or None when the shell declines.  conv_kernel / depthwise_kernel: KernelConfig.conv2d_int8 / depthwise_int8;
    the MAC counts from which a conv / a depthwise conv splits over threads (ops/conv.py, ops/depthwise.py)."""
    shell = load_shell.int8_conv_shell(ctx, op, depthwise, im2col_rows, uint8_option, requant_option, int8_dtype,
                                       float64_dtype, int64_dtype)
    if shell is None:
        return None
    x, y, wdata, ints, s_in, s_out, ws, zps, activation, uint8 = shell
    if uint8:
        return shell
    cdef dict g = <dict>ints
    cdef int64_t n = g["n"], oh = g["oh"], ow = g["ow"], oc = g["oc"], kh = g["kh"], kw = g["kw"], ic = g["ic"]
    cdef int64_t sh = g["sh"], sw = g["sw"], dh = g["dh"], dw = g["dw"]
    cdef bint as_conv = not depthwise or (ic == 1 and oc >= depthwise_as_conv_min)
    if not as_conv and depthwise_kernel not in row_kernels:
        return shell
    cdef bint avx2 = conv_kernel == "conv2d_int8_avx2"
    cdef int64_t wic = 1 if depthwise else ic
    cdef bint winograd = (as_conv and avx2 and kh == 3 and kw == 3 and sh == 1 and sw == 1 and dh == 1 and dw == 1
                          and winograd_min_ic <= wic <= winograd_max_ic)    # (conv_winograd.winograd_applies)
    if winograd and depthwise:
        return shell
    ok, bias = plain_bias(ctx, op, oc)
    if not ok:
        return shell
    cdef int64_t macs = n * oh * ow * oc * kh * kw * (1 if depthwise else ic)
    if winograd:
        return winograd_conv(ctx, op, shell, x, y, wdata, bias, g, s_in, s_out, ws, macs, conv_thread_macs)
    shape = (n, oh, ow, oc)
    if not load_shell.set_plain_output(ctx, op, 0, shape):
        ctx.set_output(op, 0, shape)
    if as_conv:
        return conv_gemm(ctx, op, depthwise, conv_kernel, x, y, wdata, bias, g, s_in, s_out, ws, macs,
                         conv_thread_macs)
    return depthwise_row_step(ctx, op, depthwise_kernel, x, y, wdata, bias, g, s_in, s_out, ws, zps, activation, macs,
                              depthwise_thread_macs)


cdef object conv_gemm(ctx, op, bint depthwise, str kernel, x, y, wdata, bias, dict ints, double s_in, double s_out,
                      ws, int64_t macs, int64_t conv_thread_macs):
    """ops/conv.prepare_conv_int8 for TFLite's per-column multipliers (computed where the weights are packed)."""
    cdef int64_t n = ints["n"], oh = ints["oh"], ow = ints["ow"], oc = ints["oc"], kh = ints["kh"], kw = ints["kw"]
    cdef int64_t sh = ints["sh"], sw = ints["sw"], dh = ints["dh"], dw = ints["dw"]
    cdef int64_t pt = ints["pad_top"], pl = ints["pad_left"], in_zp = ints["in_zp"], rq_mode = ints["mode"]
    cdef int64_t ic
    if depthwise:       # one input channel: the same sums as a CONV_2D with oc one-channel filters, on the GEMM
        w2 = wdata.reshape(kh, kw, oc).transpose(2, 0, 1).reshape(oc, kh * kw)
        ints = dict(ints)
        ints["dm"] = 1
        ic = 1
    else:
        ic = ints["ic"]
        w2 = wdata.reshape(oc, kh * kw * ic)
    cdef int64_t K = kh * kw * ic
    cdef int direct = kh == 1 and kw == 1 and sh == 1 and sw == 1 and pt == 0 and pl == 0
    if ints["direct"] != direct:
        ints = dict(ints)
        ints["direct"] = direct
    cdef int64_t rows = oh * ow, threads = 1
    if macs >= conv_thread_macs:
        threads = max(1, min(<int64_t>ctx.num_threads, rows // 16))
    cdef int mode = 1 if direct else (4 if dw == 1 else 0)
    if mode == 4 and kernel == "conv2d_int8_avx2" and kh >= 5 and (kw * ic) % 4 and 12 <= kw * ic < 32:
        mode = 5        # (ops/conv.prepare_conv_int8: a few-channel stem's gathered rows)
    cdef int64_t ihp = (oh - 1) * sh + (kh - 1) * dh + 1
    cdef int64_t iwp = (ow - 1) * sw + (kw - 1) * dw + 1
    cdef int64_t segment = kw * ic if mode == 4 and (kw * ic) % 4 else 0
    cdef bint gemv = kernel == "conv2d_int8_avx2" and direct and n * oh * ow <= 2
    cdef int layout = layout_of(kernel, gemv)
    sparse_kernel, smode, sparse_args = sparse_candidate(ctx, ints, 0, "1x1" if direct else "kxk")
    cdef int64_t kp, chunk, slice_bytes, image_bytes
    layout, kp, pointers = gemm_pack(ctx, op, w2, bias, s_in, ws, s_out, None, in_zp, 0, rq_mode == requant_float,
                                     layout, segment, sparse_args)
    if layout >= SPARSE_VNNI:
        return sparse_step(op, x, y, sparse_kernel, smode, kp, K, pointers, ints, macs, threads)
    if layout == VNNI:
        chunk = max(1, min(max(24, vnni_chunk_bytes // kp // 24 * 24), rows))
        slice_bytes = vnni_slack + (ihp * iwp * ic if mode == 4 else chunk * kp)
        slice_bytes = round_up(slice_bytes, align)
        ints_v = step_ints(ints, mode, chunk, kp, threads, slice_bytes)
        ints_v["w_zp"] = 0
        return Step(op, kernel, BoundGemm(pointers, x.index, y.index, ints_v, {}), slice_bytes * threads, macs)
    if layout == AVX2_S8:       # a 1x1 conv over one or two pixels (a classifier head): the FC kernel's int8 panels
        rows = n * oh * ow
        slice_bytes = round_up(rows * kp * 2, align)
        threads = max(1, min(<int64_t>ctx.num_threads, cdiv(oc, 16))) if macs >= conv_thread_macs else 1
        ints_g = {"rows": rows, "depth": K, "units": oc, "out_zp": ints["out_zp"], "act_min": ints["act_min"],
                  "act_max": ints["act_max"], "mode": rq_mode, "kp": kp, "chunk": rows, "w_zp": 0, "threads": threads,
                  "slice_bytes": slice_bytes}
        return Step(op, "fully_connected_int8_avx2_gemv", BoundGemm(pointers, x.index, y.index, ints_g, {}),
                    slice_bytes * threads, macs)
    if layout == AVX2:
        chunk = max(1, min(rows, max(4, (avx2_big_chunk_bytes if 2 * kp * oc >= avx2_big_weight_bytes
                                          else vnni_chunk_bytes) // (2 * kp) // 4 * 4)))
        image_bytes = (ihp * iwp * ic + 32) * 2
        if mode == 5:
            slice_bytes = round_up(image_bytes, 64) + chunk * kp * 2 + 32
        else:
            slice_bytes = image_bytes if mode == 4 else chunk * kp * 2
        slice_bytes = round_up(slice_bytes + 64, align)
        ints_a = step_ints(ints, mode, chunk, kp, threads, slice_bytes)
        return Step(op, kernel, BoundGemm(pointers, x.index, y.index, ints_a, {}), slice_bytes * threads, macs)
    return Step(op, "conv2d_int8", BoundGemm(pointers, x.index, y.index, ints, no_floats),
                0 if direct else im2col_rows * K, macs)


cdef object winograd_conv(ctx, op, shell, x, y, wdata, bias, dict ints, double s_in, double s_out, ws, int64_t macs,
                          int64_t conv_thread_macs):
    """ops/conv.prepare_conv_int8_winograd (ops/conv_winograd.winograd_step) for a dense 3x3 conv: the multipliers,
    the folded bias and U written into their kept arrays by one C call (load_winograd.winograd_arrays); the shell
    (the Python prepare decides) for sparse weights, weights that are not one contiguous block, or arrays past the
    weight budget (whose message the Python path gives, in its order)."""
    cdef int64_t n = ints["n"], oh = ints["oh"], ow = ints["ow"], oc = ints["oc"], ic = ints["ic"]
    shape = (n, oh, ow, oc)
    if not load_shell.set_plain_output(ctx, op, 0, shape):
        ctx.set_output(op, 0, shape)
    if not wdata.flags.c_contiguous:
        return shell
    cdef int64_t rows = oh * ow, threads = 1
    if macs >= conv_thread_macs:
        threads = max(1, min(<int64_t>ctx.num_threads, rows // 16))
    _, _, sparse_args = sparse_candidate(ctx, ints, 0, "kxk")      # (sparse_gemm.sparse_conv_step's wants_sparse)
    cdef double limit = sparse_args[2]
    if limit >= 2.0:        # (ctx.sparse "on")
        return shell
    cdef int64_t segment = sparse_args[1]
    if segment < 0 or segment and (9 * ic) % segment:
        return shell
    if limit >= 0.0 and sparse_enough(<const int8_t*>buffer_bytes(wdata, oc * 9 * ic, b"winograd_conv"), oc, 9 * ic,
                                      block_cols, block_depth, segment, limit):
        return shell
    cdef int64_t ocp = round_up(oc, 8), icp = round_up(ic, 4)
    cdef int64_t u_bytes = 16 * ocp * icp * 2
    if ctx.weight_bytes + u_bytes + ocp * (4 + 4 + 4 + 8 + 4) > ctx.max_weight_bytes:
        return shell
    u = keep_fitting(ctx, (16, ocp // 8, icp // 4, 8, 4), int16_dtype, u_bytes)
    bias_k = keep_fitting(ctx, (ocp,), int32_dtype, ocp * 4)
    mult = keep_fitting(ctx, (ocp,), int32_dtype, ocp * 4)
    shift = keep_fitting(ctx, (ocp,), int32_dtype, ocp * 4)
    scale64 = keep_fitting(ctx, (ocp,), float64_dtype, ocp * 8)
    scale32 = keep_fitting(ctx, (ocp,), float32_dtype, ocp * 4)
    try:
        load_winograd.winograd_arrays(wdata, bias, ints["in_zp"], s_in, ws, s_out, ctx.rounding, u, bias_k, mult,
                                      shift, scale64, scale32)
    except OverflowError:
        raise overflow_error(op) from None
    threads = max(1, min(threads, (oh + 1) // 2))       # slices of tile rows
    cdef int64_t th = (oh + 1) // 2, tw = (ow + 1) // 2     # (conv_winograd.winograd_slice_bytes)
    cdef int64_t image = round_up((2 * th + 2) * (2 * tw + 2) * round_up(ic, 16) * 2 + 64, 64)
    cdef int64_t slice_bytes = round_up(image + round_up(16 * tw * icp * 2, 64) + 4 * 16 * 8 * 4, align)
    ints_w = step_ints(ints, 0, 1, icp, threads, slice_bytes)
    pointers = {"weights": buffer_address(u), "bias": buffer_address(bias_k), "mult": buffer_address(mult),
                "shift": buffer_address(shift), "double_scales": buffer_address(scale64),
                "float_scales": buffer_address(scale32)}
    return Step(op, "conv2d_int8_avx2_winograd", BoundGemm(pointers, x.index, y.index, ints_w, {}),
                slice_bytes * threads, macs)


cdef int layout_of(str kernel, bint gemv):
    """packing_gemm.layout_for."""
    if kernel.endswith(("_vnni", "_avxvnni")):
        return VNNI
    if kernel.endswith("_avx2"):
        return AVX2_S8 if gemv else AVX2
    return PLAIN


cdef class BoundDepthwise:
    """A vector depthwise step's make(addr) (ops/depthwise.prepare_depthwise_rows's closure)."""
    cdef object block
    cdef tuple at
    cdef object x, y
    cdef dict ints

    def __init__(self, block, tuple at, x, y, dict ints):
        self.block, self.at, self.x, self.y, self.ints = block, at, x, y, ints

    def __call__(self, addr):
        base = buffer_address(self.block)
        w_at, bias_at, mult_at, shift_at, scale64_at, scale32_at, table_at, offsets_at, estimate_at = self.at
        return ({"input": addr(self.x), "weights": base + w_at, "bias": base + bias_at, "output": addr(self.y),
                 "scratch": addr("scratch"), "rq_table": base + table_at, "tap_offsets": base + offsets_at,
                 "rq_estimate": base + estimate_at, "mult": base + mult_at, "shift": base + shift_at,
                 "double_scales": base + scale64_at, "float_scales": base + scale32_at}, self.ints, {})


cdef bint plain_columns(bias, mult, shift, real, real32):
    """What packing_depthwise.pack_depthwise_rows hands load_depthwise.depthwise_rows as they are."""
    return ((bias is None or bias.flags.c_contiguous) and same_dtype(mult.dtype, int32_dtype)
            and same_dtype(shift.dtype, int32_dtype) and same_dtype(real.dtype, float64_dtype)
            and same_dtype(real32.dtype, float32_dtype) and mult.flags.c_contiguous
            and shift.flags.c_contiguous and real.flags.c_contiguous and real32.flags.c_contiguous)


cdef object depthwise_row_step(ctx, op, str kernel_name, x, y, wdata, bias, dict ints, double s_in, double s_out, ws,
                           zps, int activation, int64_t macs, int64_t depthwise_thread_macs):
    """ops/conv.prepare_conv2d_int8's depthwise branch on a vector kernel (ops/depthwise.prepare_depthwise_rows)."""
    cdef int64_t oc = ints["oc"], oh = ints["oh"], taps = ints["kh"] * ints["kw"], threads = 1
    mult, shift, real, real32, _, _ = load_pack.tflite_requant(s_in, ws, zps, s_out, ints["out_zp"], oc,
                                                               ctx.rounding, activation)
    w_taps = wdata.reshape(taps, oc)
    if macs >= depthwise_thread_macs:
        threads = max(1, min(<int64_t>ctx.num_threads, oh // 2))
    kernel = row_kernels[kernel_name]
    if profiling or not plain_columns(bias, mult, shift, real, real32):
        rq = column_requant_type(ints["mode"], mult, shift, real, real32, ints["out_zp"], ints["act_min"],
                                 ints["act_max"], 0)
        block, at, packed = pack_depthwise_timed(ctx, kernel, w_taps, bias, ints["in_zp"], rq, ints, threads)
    else:
        try:
            block, at, packed = load_depthwise.depthwise_rows(
                Keeper(ctx), w_taps, bias, mult, shift, real, real32, ints["in_zp"], 0, ints["mode"], ints["out_zp"],
                kernel.step, kernel.group, kernel.wide, kernel.table_lanes, oh, ints["ow"], ints["iw"], ints["kh"],
                ints["kw"], ints["sh"], ints["sw"], ints["dh"], ints["dw"], threads, packing_depthwise.BAND_BYTES)
        except OverflowError as exc:
            raise overflow_error(op, str(exc)) from None
    ints_d = dict(ints)
    ints_d.update(packed)
    return Step(op, kernel_name, BoundDepthwise(block, at, x.index, y.index, ints_d), packed["band_bytes"] * threads,
                macs)


def int8_fully_connected_step(ctx, op, str kernel, int64_t fc_thread_macs, uint8_option, requant_option, int8_dtype,
                              float64_dtype, int64_dtype):
    """ops/fully_connected.prepare_fully_connected's int8 step in one call: a Step; the shell's values
    (load_shell.int8_fully_connected_shell) where the Python prepare must decide (a bias it refuses); None when
    the shell declines.  kernel: KernelConfig.fully_connected_int8; fc_thread_macs: the MAC count from which it
    splits over threads (ops/fully_connected.THREAD_MIN_MACS)."""
    shell = load_shell.int8_fully_connected_shell(ctx, op, uint8_option, requant_option, int8_dtype, float64_dtype,
                                                  int64_dtype)
    if shell is None:
        return None
    x, y, wdata, rows_, depth_, units_, out_shape, s_in, in_zp_, s_out, out_zp_, ws, act_min, act_max = shell
    cdef int64_t rows = rows_, K = depth_, n_out = units_, in_zp = in_zp_, out_zp = out_zp_
    ok, bias = plain_bias(ctx, op, n_out)
    if not ok:
        return shell
    if not load_shell.set_plain_output(ctx, op, 0, out_shape):
        ctx.set_output(op, 0, out_shape)
    cdef int mode = ctx.rounding
    if mode == 0:       # (the "double" rounding: LiteRT's reference FULLY_CONNECTED rescales in double)
        mode = requant_double_scale
    cdef int64_t macs = rows * n_out * K, threads = 1
    if macs >= fc_thread_macs:
        threads = max(1, min(<int64_t>ctx.num_threads, max(rows // 4, cdiv(n_out, 16))))
    cdef bint gemv = kernel == "fully_connected_int8_avx2" and rows <= 2
    cdef int layout = layout_of(kernel, gemv)
    sparse_kernel, smode, sparse_args = sparse_candidate(ctx, as_1x1_conv, 0, "gemv" if rows < 4 else "1x1")
    cdef int64_t kp, chunk, slice_bytes
    layout, kp, pointers = gemm_pack(ctx, op, wdata, bias, s_in, ws, s_out, None, in_zp, 0, mode == requant_float,
                                     layout, 0, sparse_args)
    ints = {"rows": rows, "depth": K, "units": n_out, "out_zp": out_zp, "act_min": act_min, "act_max": act_max,
            "mode": mode}
    if layout >= SPARSE_VNNI:
        source = column_source_type(mode, out_zp, act_min, act_max, 0, n_out, s_in, ws, s_out)
        conv_ints = fully_connected_as_conv(rows, n_out, K, in_zp, source)
        return sparse_step(op, x, y, sparse_kernel, smode, kp, K, pointers, conv_ints, macs, min(threads, rows))
    if layout == VNNI:
        chunk = max(1, min(max(24, vnni_chunk_bytes // kp // 24 * 24), rows))
        slice_bytes = round_up(chunk * kp + vnni_slack, align)
        ints.update(kp=kp, chunk=chunk, w_zp=0, threads=threads, slice_bytes=slice_bytes)
        return Step(op, kernel, BoundGemm(pointers, x.index, y.index, ints, {}), slice_bytes * threads, macs)
    if layout == AVX2 or layout == AVX2_S8:
        chunk = min(rows, im2col_rows)
        slice_bytes = round_up(chunk * kp * 2, align)
        ints.update(kp=kp, chunk=chunk, w_zp=0, threads=threads, slice_bytes=slice_bytes)
        return Step(op, "fully_connected_int8_avx2_gemv" if gemv else kernel,
                    BoundGemm(pointers, x.index, y.index, ints, {}), slice_bytes * threads, macs)
    return Step(op, "fully_connected_int8", BoundPlain(pointers, x.index, y.index, ints), 0, macs)


cdef class BoundPlain:
    """The portable FULLY_CONNECTED step's make(addr): no scratch area (scratch 0)."""
    cdef dict pointers, ints
    cdef object x, y

    def __init__(self, dict pointers, x, y, dict ints):
        self.pointers, self.x, self.y, self.ints = pointers, x, y, ints

    def __call__(self, addr):
        ptrs = dict(self.pointers)
        ptrs["input"] = addr(self.x)
        ptrs["output"] = addr(self.y)
        ptrs["scratch"] = 0
        return ptrs, self.ints, {}
