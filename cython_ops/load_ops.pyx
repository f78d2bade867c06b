# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The prepares of the cheap ops (ADD / SUB / MUL, ...) in one call each for their common int8 case (issue 15):
each shell reads the tensors and options, runs every check the Python prepare runs and returns what that prepare
computes, or None wherever a check would refuse the op or a less common form applies (the Python path then
decides, with its messages: that path is each shell's twin).  Not kernels: no KERNELS table.
tests/test_load_fast_paths.py compares the plans both build; tests/test_load_ops.py the declined cases."""
from libc.stdint cimport int32_t, int64_t

import numpy

from cython_ops import load_pack
from cython_ops.load_buffer cimport concatenation_geometry, one_in_one_out, per_tensor


cdef extern from "em_multiplier.h" nogil:
    bint multiplier_of "em_multiplier_of"(double real, int rounding, int32_t* mult, int32_t* shift)


cdef enum:
    RANK = 6                 # the kernels' dims (common.pad6)
    ADD = 0
    SUB = 1
    MUL = 2

cdef object F64 = numpy.dtype(numpy.float64), I64 = numpy.dtype(numpy.int64)    # the IR's quantization types
cdef int64_t MAX_DIM = (<int64_t>1) << 40     # any shape the arena budget admits is far below


cdef tuple merged_walk(const int64_t* sizes, const int64_t* strides, int count):
    """merge_gather_dims / merge_walk_dims in C: dims of size 1 dropped, a dim folded into the one before it where
    that one's stride is this one's stride times its size; (dims, strides) as lists padded to RANK with leading
    1 / 0."""
    cdef int64_t md[RANK]
    cdef int64_t ms[RANK]
    cdef int n = 0, k
    for k in range(count):
        if sizes[k] == 1:
            continue
        if n and ms[n - 1] == strides[k] * sizes[k]:
            md[n - 1] *= sizes[k]
            ms[n - 1] = strides[k]
            continue
        md[n] = sizes[k]
        ms[n] = strides[k]
        n += 1
    dims, steps = [1] * (RANK - n), [0] * (RANK - n)
    for k in range(n):
        dims.append(md[k])
        steps.append(ms[k])
    return dims, steps


cdef bint read_shape(shape, int64_t* out, int* rank) except -1:
    """A shape of up to RANK dims, each a Python int in 0..MAX_DIM; False otherwise."""
    cdef Py_ssize_t n = len(shape), k
    if n > RANK:
        return False
    for k in range(n):
        v = shape[k]
        if type(v) is not int or not 0 <= v <= MAX_DIM:
            return False
        out[k] = v
    rank[0] = <int>n
    return True


def set_output_shape(ctx, op, int position, tuple shape, y):
    """Ctx.set_output for output `position` (tensor y) where it can only succeed: the shape is the declared one,
    the tensor neither a constant nor produced before, and within the arena budget (`shape`: non-negative Python
    ints, else it goes the slow way); else Ctx.set_output itself (its checks and messages).  Its twin is
    Ctx.set_output."""
    index = y.index
    if type(y.shape) is tuple and y.shape == shape and index not in ctx.constants and index not in ctx.shapes:
        count = y.dtype.itemsize          # (Python ints: a hostile declared shape may pass int64)
        for d in shape:
            if type(d) is not int or d <= 0:     # (an empty tensor: set_output checks its other dimensions)
                count = None
                break
            count *= d
        if count is not None and count <= ctx.max_tensor_bytes:
            ctx.producers[index] = op
            ctx.shapes[index] = shape
            return
    ctx.set_output(op, position, shape)


def int8_binary_shell(ctx, op, int which, int8_dtype):
    """What ops/elementwise.prepare_binary reads, checks and computes for an int8 ADD (which 0), SUB (1) or MUL (2)
    under TFLite's fixed-point contract (rounding 0 or 1): sets the output shape and returns the kernel's integers
    (collapsed broadcast dims and strides, zero points, multipliers, activation range, as prepare_binary orders
    them; a constant operand's tables are then built from them as on the Python path).  None wherever a check
    would refuse the op or another form applies (int16 / int32 / float, rank over 6, an unknown activation)."""
    inputs, outputs = op.inputs, op.outputs
    if len(inputs) < 2 or len(outputs) < 1 or ctx.rounding not in (0, 1):
        return None
    ai, bi, yi = inputs[0], inputs[1], outputs[0]
    if ai < 0 or bi < 0 or yi < 0:
        return None
    shapes = ctx.shapes
    tensors = ctx.graph.tensors
    a, b, y = tensors[ai], tensors[bi], tensors[yi]
    if a.dtype != int8_dtype or b.dtype != int8_dtype or y.dtype != int8_dtype:
        return None
    activation = op.options.get("fused_activation_function", 0)
    if type(activation) is not int or not 0 <= activation <= 3:
        return None
    sa, sb = shapes.get(ai), shapes.get(bi)
    if sa is None or sb is None:
        return None
    cdef int64_t da[RANK], db[RANK], out[RANK], st1[RANK], st2[RANK], acc1, acc2
    cdef int64_t x1, x2
    cdef int na, nb, rank, k, pa, pb
    if not (read_shape(sa, da, &na) and read_shape(sb, db, &nb)):
        return None
    rank = na if na > nb else nb
    # out, broadcast over the trailing-aligned dims; strides of each input over the 6-D output (0 where broadcast)
    acc1 = acc2 = 1
    for k in range(RANK - 1, -1, -1):
        pa = k - (RANK - na)
        pb = k - (RANK - nb)
        x1 = da[pa] if pa >= 0 else 1
        x2 = db[pb] if pb >= 0 else 1
        if x1 != x2 and x1 != 1 and x2 != 1:
            return None
        out[k] = 0 if (x1 == 0 or x2 == 0) else (x1 if x1 > x2 else x2)
        st1[k] = 0 if (x1 == 1 and out[k] != 1) else acc1
        st2[k] = 0 if (x2 == 1 and out[k] != 1) else acc2
        acc1 *= x1
        acc2 *= x2
    params = (per_tensor(a, F64, I64), per_tensor(b, F64, I64), per_tensor(y, F64, I64))
    if params[0] is None or params[1] is None or params[2] is None:
        return None
    (s1, z1), (s2, z2), (so, zo) = params
    act_range = load_pack.activation_range_int8(activation, so, zo)
    if act_range is None:
        return None
    cdef double f1 = <float>s1, f2 = <float>s2, fo = <float>so, twice_max
    cdef int32_t m1, sh1, m2, sh2, mo, sho
    cdef int rounding = ctx.rounding
    if which == MUL:
        if not multiplier_of(f1 * f2 / fo, rounding, &mo, &sho):
            return None
    else:
        twice_max = 2.0 * (f1 if f1 > f2 else f2)
        if not (multiplier_of(f1 / twice_max, rounding, &m1, &sh1) and multiplier_of(f2 / twice_max, rounding, &m2, &sh2)
                and multiplier_of(twice_max / ((1 << 20) * fo), rounding, &mo, &sho)):
            return None
    # collapse_broadcast: dims of 1 dropped, a dim merged into the next where both inputs step through the pair
    cdef int64_t md[RANK], m1s[RANK], m2s[RANK]
    cdef int n = 0
    for k in range(RANK):
        if out[k] == 1:
            continue
        if n and m1s[n - 1] == st1[k] * out[k] and m2s[n - 1] == st2[k] * out[k]:
            md[n - 1] *= out[k]
            m1s[n - 1] = st1[k]
            m2s[n - 1] = st2[k]
            continue
        md[n] = out[k]
        m1s[n] = st1[k]
        m2s[n] = st2[k]
        n += 1
    dims, strides1, strides2 = [1] * (RANK - n), [0] * (RANK - n), [0] * (RANK - n)
    for k in range(n):
        dims.append(md[k])
        strides1.append(m1s[k])
        strides2.append(m2s[k])
    set_output_shape(ctx, op, 0, tuple([out[k] for k in range(RANK - rank, RANK)]), y)
    if which == MUL:
        return dict(dims=dims, strides1=strides1, strides2=strides2, zp1=z1, zp2=z2, out_zp=zo, mult=mo, shift=sho,
                    act_min=act_range[0], act_max=act_range[1], mode=rounding, threads=1)
    return dict(dims=dims, strides1=strides1, strides2=strides2, zp1=z1, zp2=z2, out_zp=zo, left_shift=20, mult1=m1,
                shift1=sh1, mult2=m2, shift2=sh2, out_mult=mo, out_shift=sho, act_min=act_range[0],
                act_max=act_range[1], mode=rounding, sign=1 if which == ADD else -1, threads=1)


def int8_unary_shell(ctx, op, int8_dtype):
    """The common head of the one-input int8 prepares whose output has the input's shape (the activations, int8
    QUANTIZE): input and output int8, each quantized per tensor with a positive scale, the input's shape known.
    Sets the output shape and returns (input index, output index, elements, input scale, input zero point, output
    scale, output zero point); None wherever the Python path must decide (its checks and messages)."""
    head = one_in_one_out(ctx, op, int8_dtype, int8_dtype)
    if head is None:
        return None
    xi, yi, x, y, xs = head
    cdef int64_t dims[RANK]
    cdef int rank, k
    if not read_shape(xs, dims, &rank):
        return None
    x_params, y_params = per_tensor(x, F64, I64), per_tensor(y, F64, I64)
    if x_params is None or y_params is None:
        return None
    n = 1
    for k in range(rank):
        n *= dims[k]
    set_output_shape(ctx, op, 0, xs, y)
    return xi, yi, n, x_params[0], x_params[1], y_params[0], y_params[1]


cdef bint same_quantization(a, b, int8_dtype, int16_dtype, uint8_dtype) except -1:
    """common.require_same_quant would let the bytes be copied: int8 / int16 per tensor with equal (scale, zero
    point), uint8 without quantization on either side, any other type; False where it must decide."""
    dtype = a.dtype
    if dtype == int8_dtype or dtype == int16_dtype:
        pa, pb = per_tensor(a, F64, I64), per_tensor(b, F64, I64)
        return pa is not None and pa == pb
    if dtype == uint8_dtype:
        return a.quant is None and b.quant is None
    return True


def reshape_shell(ctx, op, int8_dtype, int16_dtype, uint8_dtype, int32_dtype, int64_dtype):
    """What ops/shape.prepare_reshape reads, checks and infers for a RESHAPE of a non-constant input at the file's
    batch: the new shape from the constant shape input, the new_shape option or the declared output (one -1
    inferred), the element counts, types and quantization equal.  Sets the output shape and returns (output shape,
    bytes); None wherever the Python path must decide (its checks and messages)."""
    inputs, outputs = op.inputs, op.outputs
    if len(inputs) < 1 or len(outputs) < 1 or ctx.batch_changed:
        return None
    xi, yi = inputs[0], outputs[0]
    constants = ctx.constants
    if xi < 0 or yi < 0 or xi in constants:
        return None
    tensors = ctx.graph.tensors
    x, y = tensors[xi], tensors[yi]
    xs = ctx.shapes.get(xi)
    if type(xs) is not tuple or x.dtype != y.dtype or not same_quantization(x, y, int8_dtype, int16_dtype, uint8_dtype):
        return None
    cdef int64_t dims[RANK]
    cdef int rank, k, unknown = -1
    if not read_shape(xs, dims, &rank):
        return None
    total = 1
    for k in range(rank):
        total *= dims[k]
    if len(inputs) > 1 and inputs[1] >= 0 and inputs[1] in constants:
        spec = constants[inputs[1]]
        if spec.dtype != int32_dtype and spec.dtype != int64_dtype:
            return None
        new = spec.reshape(-1).tolist()
    else:
        option = op.options.get("new_shape")
        new = list(option) if option is not None and len(option) else list(y.shape)
    known = 1
    for k in range(len(new)):
        d = new[k]
        if type(d) is not int:
            return None
        if d == -1:
            if unknown >= 0:
                return None
            unknown = k
        elif d < 0:
            return None
        else:
            known *= d
    if unknown >= 0:
        if known == 0 or total % known:
            return None
        new[unknown] = total // known
    elif known != total:
        return None
    out = tuple(new)
    set_output_shape(ctx, op, 0, out, y)
    return out, total * x.dtype.itemsize


cdef int64_t MAX_EXTENT = (<int64_t>1) << 31       # common.MAX_EXTENT


cdef bint small_positive(v, int64_t* out):
    """A Python int in 1..MAX_EXTENT (common.require_positive's common case)."""
    if type(v) is not int or not 0 < v <= MAX_EXTENT:
        return False
    out[0] = v
    return True


cdef inline int64_t floor_quotient(int64_t a, int64_t b) noexcept:
    """Python's a // b for b > 0."""
    cdef int64_t q = a // b
    return q - 1 if (a % b != 0 and a < 0) else q


cdef bint pool_extent(int padding, int64_t size, int64_t k, int64_t stride, int64_t* out, int64_t* lead):
    """common.spatial_padding with dilation 1 for SAME (0) / VALID (1): (output size, leading pad)."""
    if (k if k > stride else stride) > MAX_EXTENT:
        return False
    cdef int64_t o = floor_quotient(size + stride - 1, stride) if padding == 0 else floor_quotient(size + stride - k,
                                                                                                   stride)
    if o < 0:
        o = 0
    cdef int64_t total = (o - 1) * stride + k - size
    out[0] = o
    lead[0] = (total if total > 0 else 0) // 2
    return True


def int8_pool_shell(ctx, op, int8_dtype):
    """What ops/pool.prepare_pool reads and checks for an int8 AVERAGE_POOL_2D / MAX_POOL_2D with SAME or VALID
    padding: 4-D input, positive filter and strides, equal per-tensor input and output quantization, a fused
    activation of the four.  Sets the output shape and returns the kernel's integers; None wherever the Python path
    must decide (its checks and messages)."""
    head = one_in_one_out(ctx, op, int8_dtype, int8_dtype)
    if head is None:
        return None
    xi, yi, x, y, xs = head
    if len(xs) != 4:
        return None
    o = op.options
    padding = o.get("padding", 0)
    activation = o.get("fused_activation_function", 0)
    if (type(padding) is not int or not 0 <= padding <= 1 or type(activation) is not int or not 0 <= activation <= 3
            or o.get("explicit_padding") is not None):
        return None
    cdef int64_t n, ih, iw, c, kh, kw, sh, sw, oh, ow, pt, pl
    if not (small_positive(o.get("filter_height", 0), &kh) and small_positive(o.get("filter_width", 0), &kw)
            and small_positive(o.get("stride_h", 0), &sh) and small_positive(o.get("stride_w", 0), &sw)):
        return None
    if not (type(xs[0]) is int and type(xs[1]) is int and type(xs[2]) is int and type(xs[3]) is int
            and 0 <= xs[0] <= MAX_EXTENT and 0 <= xs[1] <= MAX_EXTENT and 0 <= xs[2] <= MAX_EXTENT
            and 0 <= xs[3] <= MAX_EXTENT):
        return None
    n, ih, iw, c = xs[0], xs[1], xs[2], xs[3]
    if not (pool_extent(padding, ih, kh, sh, &oh, &pt) and pool_extent(padding, iw, kw, sw, &ow, &pl)):
        return None
    params = per_tensor(x, F64, I64)
    if params is None or params != per_tensor(y, F64, I64):
        return None
    act_range = load_pack.activation_range_int8(activation, params[0], params[1])
    if act_range is None:
        return None
    set_output_shape(ctx, op, 0, (n, oh, ow, c), y)
    return dict(n=n, ih=ih, iw=iw, c=c, oh=oh, ow=ow, kh=kh, kw=kw, sh=sh, sw=sw, pad_top=pt, pad_left=pl,
                act_min=act_range[0], act_max=act_range[1])


def concatenation_shell(ctx, op, int8_dtype, int16_dtype, uint8_dtype):
    """What ops/shape.prepare_concatenation reads and checks for a CONCATENATION that copies (no uint8 input
    rescaled) of inputs not all constant: equal types and quantization, equal ranks and dims off the axis, no fused
    activation.  Sets the output shape and returns (output, inputs, rows outside the axis, each input's row
    bytes); None wherever the Python path must decide (its checks and messages)."""
    inputs, outputs = op.inputs, op.outputs
    cdef Py_ssize_t count = len(inputs), k
    if count < 1 or len(outputs) < 1 or outputs[0] < 0:
        return None
    o = op.options
    activation = o.get("fused_activation_function", 0)
    if type(activation) is not int or activation != 0:
        return None
    tensors, shapes, constants = ctx.graph.tensors, ctx.shapes, ctx.constants
    y = tensors[outputs[0]]
    # (uint8 inputs, which LiteRT rescales to the output's quantization, are copied when it equals theirs: the
    # check below asks that of every int8 input)
    ins, in_shapes = [], []
    variable = False
    for k in range(count):
        i = inputs[k]
        if i < 0:
            return None
        s = shapes.get(i)
        if type(s) is not tuple:
            return None
        t = tensors[i]
        if t.dtype != y.dtype or not same_quantization(t, y, int8_dtype, int16_dtype, uint8_dtype):
            return None
        variable = variable or i not in constants
        ins.append(t)
        in_shapes.append(s)
    if not variable:
        return None
    geometry = concatenation_geometry(in_shapes, o.get("axis", 0), y.dtype.itemsize)
    if geometry is None:
        return None
    out, outer, rows = geometry
    set_output_shape(ctx, op, 0, out, y)
    return y, ins, outer, rows


def int8_mean_shell(ctx, op, int8_dtype, int32_dtype, int64_dtype):
    """What ops/reduce.prepare_mean reads, checks and computes for an int8 MEAN over constant int32 / int64 axes
    (rank up to 6): the output shape (set), the merged walk, the count and the multiplier with 1/count folded in
    (numerics.mean_multiplier).  Returns the kernel's integers; None wherever the Python path must decide."""
    inputs, outputs = op.inputs, op.outputs
    if len(inputs) < 2 or len(outputs) < 1:
        return None
    xi, ai, yi = inputs[0], inputs[1], outputs[0]
    constants = ctx.constants
    if xi < 0 or ai < 0 or yi < 0 or ai not in constants:
        return None
    tensors = ctx.graph.tensors
    x, y = tensors[xi], tensors[yi]
    if x.dtype != int8_dtype or y.dtype != int8_dtype:
        return None
    xs = ctx.shapes.get(xi)
    axes_data = constants[ai]
    if type(xs) is not tuple or (axes_data.dtype != int32_dtype and axes_data.dtype != int64_dtype):
        return None
    cdef int64_t dims[RANK]
    cdef int rank, k, a
    cdef bint reduced[RANK]
    if not read_shape(xs, dims, &rank):
        return None
    for k in range(RANK):
        reduced[k] = False
    for v in axes_data.reshape(-1).tolist():
        if not -rank <= v < rank:
            return None
        reduced[v + rank if v < 0 else v] = True
    keep = bool(op.options.get("keep_dims", False))
    cdef int64_t count = 1, n_out = 1, stride = 1
    out = []
    for k in range(rank):
        if reduced[k]:
            count *= dims[k]
            if keep:
                out.append(1)
        else:
            n_out *= dims[k]
            out.append(dims[k])
    if count * 255 >= (<int64_t>1) << 31:
        return None
    x_params, y_params = per_tensor(x, F64, I64), per_tensor(y, F64, I64)
    if x_params is None or y_params is None:
        return None
    cdef int32_t m, sh
    cdef int rounding = ctx.rounding
    cdef double real = <double><float>x_params[0] / <double><float>y_params[0]
    if not multiplier_of(real, rounding, &m, &sh):
        return None
    cdef int64_t up = -1, mult = 0, shift = 0, c = count
    while c:                                           # count.bit_length() - 1
        up += 1
        c >>= 1
    if up > 32:
        up = 32
    if up > 31 + sh:
        up = 31 + sh
    if up >= 0:
        mult = ((<int64_t>m) << up) // count
        shift = sh - up
    # the 6-D walk (leading 1s), each output's stride per input dim (0 where reduced), then merge_walk_dims
    cdef int64_t walk[RANK], strides[RANK]
    for k in range(RANK):
        walk[k] = 1
        strides[k] = 0
    for k in range(rank - 1, -1, -1):
        walk[RANK - rank + k] = dims[k]
        if not reduced[k]:
            strides[RANK - rank + k] = stride
            stride *= dims[k]
    merged_dims, merged_strides = merged_walk(walk, strides, RANK)
    set_output_shape(ctx, op, 0, tuple(out), y)
    return dict(dims=merged_dims, out_strides=merged_strides, outputs=n_out, reduced=count, is_float=0,
                in_zp=x_params[1], out_zp=y_params[1], mult=mult, shift=shift, mode=rounding)


cdef inline int64_t floor_div(int64_t a, int64_t b) noexcept:
    """Python's a // b for any nonzero b."""
    cdef int64_t q = a // b
    return q - 1 if (a % b != 0 and ((a < 0) != (b < 0))) else q


cdef object int_list(data, int32_dtype, int64_dtype):
    """A constant int32 / int64 vector's values as Python ints (folding.int_values), else None."""
    if data.dtype != int32_dtype and data.dtype != int64_dtype:
        return None
    return data.reshape(-1).tolist()


def strided_slice_shell(ctx, op, int8_dtype, int16_dtype, uint8_dtype, int32_dtype, int64_dtype):
    """What ops/shape.prepare_strided_slice and gather_step read, check and compute for a STRIDED_SLICE (input
    rank up to 6) with constant int32 / int64 begin, end and strides and no ellipsis, new-axis or offset option:
    the output shape (set) and the gather's integers; of a constant input, (output shape, start, strides) of the
    gather that folds it.  None wherever the Python path must decide (its checks and messages)."""
    inputs, outputs = op.inputs, op.outputs
    if len(inputs) < 4 or len(outputs) < 1:
        return None
    xi, yi = inputs[0], outputs[0]
    constants = ctx.constants
    if xi < 0 or yi < 0:
        return None
    for k in range(1, 4):
        if inputs[k] < 0 or inputs[k] not in constants:
            return None
    o = op.options
    if o.get("ellipsis_mask", 0) or o.get("new_axis_mask", 0) or o.get("offset", False):
        return None
    bm, em, sm = o.get("begin_mask", 0), o.get("end_mask", 0), o.get("shrink_axis_mask", 0)
    if type(bm) is not int or type(em) is not int or type(sm) is not int:
        return None
    tensors = ctx.graph.tensors
    x, y = tensors[xi], tensors[yi]
    xs = ctx.shapes.get(xi)
    if (type(xs) is not tuple or x.dtype != y.dtype or x.dtype.itemsize not in (1, 2, 4, 8)
            or not same_quantization(x, y, int8_dtype, int16_dtype, uint8_dtype)):
        return None
    cdef int64_t dims[RANK], st[RANK], b, e, s, dim, lo, hi, size, start = 0
    cdef int rank, n, d, sign
    if not read_shape(xs, dims, &rank):
        return None
    begin = int_list(constants[inputs[1]], int32_dtype, int64_dtype)
    end = int_list(constants[inputs[2]], int32_dtype, int64_dtype)
    strides = int_list(constants[inputs[3]], int32_dtype, int64_dtype)
    if begin is None or end is None or strides is None:
        return None
    n = len(begin)
    if len(end) != n or len(strides) != n or n > rank:
        return None
    for v in begin + end + strides:
        if not -MAX_EXTENT <= v <= MAX_EXTENT:
            return None
    if rank:
        st[rank - 1] = 1
    for d in range(rank - 2, -1, -1):
        st[d] = st[d + 1] * dims[d + 1]
        if st[d] > MAX_DIM:               # (every product below then stays inside int64)
            return None
    out_shape, out_strides = [], []
    for d in range(rank):
        dim = dims[d]
        if d < n:
            b, e, s = begin[d], end[d], strides[d]
        else:
            b, e, s = 0, dim, 1
        if s == 0 or (s if s > 0 else -s) > MAX_EXTENT:
            return None
        if sm >> d & 1:
            if b < 0:
                b += dim
            if not 0 <= b < dim:
                return None
            start += b * st[d]
            continue
        if s > 0:
            lo, hi, sign = 0, dim, 1
        else:
            lo, hi, sign = -1, dim - 1, -1
        if d < n and bm >> d & 1:
            b = 0 if s > 0 else dim - 1
        else:
            if b < 0:
                b += dim
            b = lo if b < lo else (hi if b > hi else b)
        if d < n and em >> d & 1:
            e = dim if s > 0 else -1
        else:
            if e < 0:
                e += dim
            e = lo if e < lo else (hi if e > hi else e)
        size = floor_div(e - b + (s - sign), s)
        if size < 0:
            size = 0
        if size:
            start += b * st[d]
        out_shape.append(size)
        out_strides.append(st[d] * s)
    if xi in constants:       # (the Python path folds it: its strided gather of the constant)
        return out_shape, start, out_strides
    # merge_gather_dims: size-1 dims dropped, a dim joined to the next where the input steps through both as one
    cdef int64_t md[RANK], ms[RANK]
    cdef int m = 0
    for d in range(len(out_shape)):
        size, s = out_shape[d], out_strides[d]
        if size == 1:
            continue
        if m and ms[m - 1] == s * size:
            md[m - 1] *= size
            ms[m - 1] = s
            continue
        md[m] = size
        ms[m] = s
        m += 1
    gather_dims, gather_strides = [1] * (RANK - m), [0] * (RANK - m)
    for d in range(m):
        gather_dims.append(md[d])
        gather_strides.append(ms[d])
    set_output_shape(ctx, op, 0, tuple(out_shape), y)
    return dict(itemsize=x.dtype.itemsize, dims=gather_dims, strides=gather_strides, start=start)


def split_shell(ctx, op, int8_dtype, int16_dtype, uint8_dtype, int32_dtype, int64_dtype):
    """What ops/shape.prepare_split and split_steps read, check and compute for a SPLIT into equal pieces along a
    constant int32 / int64 axis (rank up to 6): every output's shape (set) and its strided gather's integers, as
    [(output index, ints)].  None wherever the Python path must decide (its checks and messages)."""
    inputs, outputs = op.inputs, op.outputs
    cdef Py_ssize_t count = len(outputs), k
    if len(inputs) < 2 or count < 1:
        return None
    ai, xi = inputs[0], inputs[1]
    constants = ctx.constants
    if ai < 0 or xi < 0 or ai not in constants:
        return None
    axis_values = int_list(constants[ai], int32_dtype, int64_dtype)
    tensors = ctx.graph.tensors
    x = tensors[xi]
    xs = ctx.shapes.get(xi)
    if not axis_values or type(xs) is not tuple or x.dtype.itemsize not in (1, 2, 4, 8):
        return None
    cdef int64_t dims[RANK], st[RANK], piece
    cdef int rank, axis, d
    if not read_shape(xs, dims, &rank):
        return None
    axis = -1
    v = axis_values[0]
    if -rank <= v < rank:
        axis = v + rank if v < 0 else v
    if axis < 0 or dims[axis] % count:
        return None
    piece = dims[axis] // count
    ys = []
    for k in range(count):
        if outputs[k] < 0:
            return None
        y = tensors[outputs[k]]
        if y.dtype != x.dtype or not same_quantization(x, y, int8_dtype, int16_dtype, uint8_dtype):
            return None
        ys.append(y)
    if rank:
        st[rank - 1] = 1
    for d in range(rank - 2, -1, -1):
        st[d] = st[d + 1] * dims[d + 1]
    shape = list(xs)
    shape[axis] = piece
    shape = tuple(shape)
    # merge_gather_dims of (shape, strides): the same for every piece
    cdef int64_t sizes[RANK]
    for d in range(rank):
        sizes[d] = piece if d == axis else dims[d]
    gather_dims, gather_strides = merged_walk(sizes, st, rank)
    steps = []
    for k in range(count):
        set_output_shape(ctx, op, k, shape, ys[k])
        steps.append((outputs[k], dict(itemsize=x.dtype.itemsize, dims=list(gather_dims),
                                       strides=list(gather_strides), start=k * piece * st[axis])))
    return steps
