# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The int8 CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED prepares' reading and checks of the common TFLite case in
one call each (issue 15): int8_conv_shell, int8_fully_connected_shell.  None wherever the Python path must decide
(its messages name the op): that path is their twin, and tests/test_load_fast_paths.py compares the two plan by
plan.  Not kernels: no KERNELS table."""
from cpython.long cimport PyLong_AsLongLongAndOverflow
from libc.stdint cimport int64_t

from cython_ops import load_pack
from cython_ops.load_buffer cimport buffer_bytes, per_tensor, same_dtype


# --- the int8 CONV_2D / DEPTHWISE_CONV_2D prepare's reading and checks (ops/conv.py), in one call ---------------------

cdef int64_t MAX_EXTENT = (<int64_t>1) << 31       # common.MAX_EXTENT


cdef inline int64_t floor_quotient(int64_t a, int64_t b) noexcept:
    cdef int64_t q = a // b
    if (a % b != 0) and ((a < 0) != (b < 0)):
        q -= 1
    return q


cdef bint small_positive(v, int64_t* out):
    """A Python int in 1..MAX_EXTENT (what the fast path takes; anything else goes to the Python checks), read as
    a C integer (no Python comparisons)."""
    if type(v) is not int:
        return False
    cdef int overflow = 0
    cdef long long c = PyLong_AsLongLongAndOverflow(v, &overflow)
    if overflow or not (0 < c <= MAX_EXTENT):
        return False
    out[0] = c
    return True


cdef bint padded_extent(int padding, int64_t size, int64_t k, int64_t stride, int64_t dilation, int64_t* out,
                        int64_t* lead) noexcept:
    """common.spatial_padding for SAME (0) / VALID (1): (output size, leading pad); False past MAX_EXTENT."""
    cdef int64_t eff = (k - 1) * dilation + 1, total
    if eff > MAX_EXTENT or stride > MAX_EXTENT:
        return False
    if padding == 0:
        out[0] = floor_quotient(size + stride - 1, stride)
    else:
        out[0] = floor_quotient(size + stride - eff, stride)
    if out[0] < 0:
        out[0] = 0
    total = (out[0] - 1) * stride + eff - size
    lead[0] = (total if total > 0 else 0) // 2
    return True


cdef object int8_operands(ctx, op):
    """(input, weights, output tensors, input index, weights index) of a conv / FC shell's op; None when the op
    lacks them (the Python path names what is missing)."""
    inputs, outputs = op.inputs, op.outputs
    if len(inputs) < 2 or len(outputs) < 1:
        return None
    xi, wi, yi = inputs[0], inputs[1], outputs[0]
    if xi < 0 or wi < 0 or yi < 0:
        return None
    tensors = ctx.graph.tensors
    return tensors[xi], tensors[wi], tensors[yi], xi, wi


cdef object int8_quantization(x, y, w, int64_t columns, int axis, int activation, float64_dtype, int64_dtype,
                              const char* what, bint uint8=False):
    """(input scale, input zero point, output scale, output zero point, float64 weight scales, int64 weight zero
    points, act_min, act_max) of an int8 conv / FC shell: per-tensor input and output, weights quantized per tensor
    or along `axis` (`columns` scales) with zero points all 0 (uint8: one positive weight scale, any zero point);
    None wherever the Python path must decide."""
    x_params = per_tensor(x, float64_dtype, int64_dtype)
    y_params = per_tensor(y, float64_dtype, int64_dtype)
    if x_params is None or y_params is None or w.quant is None:
        return None
    ws, zps = w.quant.scale, w.quant.zero_point
    if (ws.ndim != 1 or not same_dtype(ws.dtype, float64_dtype) or zps.ndim != 1
            or not same_dtype(zps.dtype, int64_dtype)):
        return None
    cdef const int64_t* zp
    cdef Py_ssize_t i
    if uint8:       # (requant.uint8_column_requant: one scale, which must be positive, and its zero point)
        if ws.size != 1 or zps.size < 1 or not float(ws[0]) > 0:
            return None
    else:
        if ws.size != 1 and (ws.size != columns or w.quant.axis != axis):
            return None
        zp = <const int64_t*>buffer_bytes(zps, zps.size * 8, what)
        for i in range(zps.size):
            if zp[i] != 0:
                return None
    s_in, in_zp = x_params
    s_out, out_zp = y_params
    act_range = load_pack.activation_range_int8(activation, s_out, out_zp)
    if act_range is None:
        return None
    return s_in, in_zp, s_out, out_zp, ws, zps, act_range[0], act_range[1]


cdef bint explicit_extent(explicit, int axis, int64_t size, int64_t k, int64_t stride, int64_t dilation,
                          int64_t* out, int64_t* lead):
    """common.spatial_padding for explicit pads [top, left, bottom, right] (a PAD folded into the conv): (output
    size, leading pad); False for anything but four Python ints in 0..MAX_EXTENT, or past MAX_EXTENT."""
    cdef int64_t eff = (k - 1) * dilation + 1, first, last
    if eff > MAX_EXTENT or stride > MAX_EXTENT:
        return False
    if type(explicit) is not list and type(explicit) is not tuple or len(explicit) != 4:
        return False
    a, b = explicit[axis], explicit[axis + 2]
    if type(a) is not int or type(b) is not int or not (0 <= a <= MAX_EXTENT and 0 <= b <= MAX_EXTENT):
        return False
    first, last = a, b
    out[0] = floor_quotient(size + first + last - eff, stride) + 1
    if out[0] < 0:
        out[0] = 0
    lead[0] = first
    return True


def int8_conv_shell(ctx, op, bint depthwise, int chunk, uint8_option, requant_option, int8_dtype, float64_dtype,
                    int64_dtype):
    """What ops/conv.prepare_conv2d reads and checks for an int8 CONV_2D (or DEPTHWISE_CONV_2D) under TFLite's
    contract, for the common well-formed case: (input, output, weights, the conv integers, input scale, output
    scale, float64 weight scales, int64 weight zero points, activation code, uint8).  None wherever any check would
    refuse the op or a less common form applies (grouped conv, onnxruntime's float requantization, a depth
    multiplier the shapes must decide): the Python path then decides, with its messages.  Last in the tuple: uint8
    (the model's uint8 arithmetic, held as int8: the caller computes its one multiplier, requant.py)."""
    operands = int8_operands(ctx, op)
    if operands is None:
        return None
    x, w, y, xi, wi = operands
    shapes, constants, o = ctx.shapes, ctx.constants, op.options
    if not same_dtype(y.dtype, int8_dtype):
        return None
    xs = shapes.get(xi)
    wdata = constants.get(wi)
    if (xs is None or wdata is None or len(xs) != 4 or wdata.ndim != 4
            or not same_dtype(wdata.dtype, int8_dtype)):
        return None
    if o.get("requant") == requant_option:
        return None
    uint8 = bool(o.get(uint8_option))
    explicit = o.get("explicit_padding")
    cdef int64_t n, ih, iw, ic, kh, kw, oc, wic, sh, sw, dh, dw, dm, oh, ow, pt, pl
    if not (small_positive(xs[0], &n) and small_positive(xs[1], &ih) and small_positive(xs[2], &iw)
            and small_positive(xs[3], &ic)):
        return None
    if not (small_positive(o.get("stride_h", 1), &sh) and small_positive(o.get("stride_w", 1), &sw)
            and small_positive(o.get("dilation_h_factor", 1), &dh)
            and small_positive(o.get("dilation_w_factor", 1), &dw)):
        return None
    padding = o.get("padding", 0)
    activation = o.get("fused_activation_function", 0)
    if (type(padding) is not int or padding not in (0, 1) or type(activation) is not int
            or activation not in (0, 1, 2, 3)):
        return None
    wshape = wdata.shape
    if depthwise:
        if wshape[0] != 1 or not (small_positive(wshape[1], &kh) and small_positive(wshape[2], &kw)
                                  and small_positive(wshape[3], &oc)) or oc % ic:
            return None
        dm = oc // ic          # (what the options' depth_multiplier must equal, or the shapes decide)
    else:
        if not (small_positive(wshape[0], &oc) and small_positive(wshape[1], &kh) and small_positive(wshape[2], &kw)
                and small_positive(wshape[3], &wic)) or wic != ic:
            return None
        dm = 1
    if explicit is not None:
        if not (explicit_extent(explicit, 0, ih, kh, sh, dh, &oh, &pt)
                and explicit_extent(explicit, 1, iw, kw, sw, dw, &ow, &pl)):
            return None
    elif not (padded_extent(padding, ih, kh, sh, dh, &oh, &pt) and padded_extent(padding, iw, kw, sw, dw, &ow, &pl)):
        return None
    q = int8_quantization(x, y, w, oc, 3 if depthwise else 0, activation, float64_dtype, int64_dtype,
                          b"int8_conv_shell", uint8)
    if q is None:
        return None
    s_in, in_zp, s_out, out_zp, ws, zps, act_min, act_max = q
    direct = int(not depthwise and kh == 1 and kw == 1 and sh == 1 and sw == 1 and pt == 0 and pl == 0)
    ints = dict(n=n, ih=ih, iw=iw, ic=ic, oh=oh, ow=ow, oc=oc, kh=kh, kw=kw, sh=sh, sw=sw, dh=dh, dw=dw, pad_top=pt,
                pad_left=pl, in_zp=in_zp, out_zp=out_zp, act_min=act_min, act_max=act_max,
                mode=ctx.rounding, dm=dm, direct=direct, chunk=chunk)
    return x, y, wdata, ints, s_in, s_out, ws, zps, activation, uint8


def int8_fully_connected_shell(ctx, op, uint8_option, requant_option, int8_dtype, float64_dtype, int64_dtype):
    """What ops/fully_connected.prepare_fully_connected reads and checks for an int8 FULLY_CONNECTED under TFLite's
    contract, in the common well-formed case: (input, output, weights, rows, depth, units, output shape, input
    scale, input zero point, output scale, output zero point, float64 weight scales, act_min, act_max).  None
    wherever any check would refuse the op or a less common form applies (uint8, onnxruntime's float
    requantization, shuffled weights): the Python path then decides, with its messages."""
    operands = int8_operands(ctx, op)
    if operands is None:
        return None
    x, w, y, xi, wi = operands
    shapes, constants, o = ctx.shapes, ctx.constants, op.options
    if x.dtype != int8_dtype or y.dtype != int8_dtype:
        return None
    xs = shapes.get(xi)
    wdata = constants.get(wi)
    if xs is None or wdata is None or wdata.ndim != 2 or wdata.dtype != int8_dtype:
        return None
    if o.get(uint8_option) or o.get("requant") == requant_option or o.get("weights_format", 0) != 0:
        return None
    activation = o.get("fused_activation_function", 0)
    if type(activation) is not int or activation not in (0, 1, 2, 3):
        return None
    cdef int64_t units, depth, total = 1, d
    if not (small_positive(wdata.shape[0], &units) and small_positive(wdata.shape[1], &depth)):
        return None
    for v in xs:
        if not small_positive(v, &d):
            return None
        total *= d
        if total > MAX_EXTENT:
            return None
    if total % depth:
        return None
    rows = total // depth
    cdef Py_ssize_t rank = len(xs)
    if o.get("keep_num_dims", False):
        if rank == 0 or xs[rank - 1] != depth:      # (this module indexes without wraparound)
            return None
        out_shape = tuple(xs[:rank - 1]) + (units,)
    else:
        out_shape = (rows, units)
    q = int8_quantization(x, y, w, units, 0, activation, float64_dtype, int64_dtype, b"int8_fully_connected_shell")
    if q is None:
        return None
    s_in, in_zp, s_out, out_zp, ws, zps, act_min, act_max = q
    return x, y, wdata, rows, depth, units, out_shape, s_in, in_zp, s_out, out_zp, ws, act_min, act_max


# --- Ctx.set_output's common case in one call (edgeml/runtime/plan.py) -----------------------------------------------

cdef int64_t SHAPE_PRODUCT_LIMIT = (<int64_t>1) << 62


def set_plain_output(ctx, op, Py_ssize_t position, shape):
    """Ctx.set_output for a shape that is a tuple of non-negative Python ints equal to the output's declared shape,
    on a tensor no graph input, constant or other op provides, within the arena budget: records it and returns
    True.  False (nothing recorded) for anything else: Ctx.set_output's checks then decide, with their messages."""
    if type(shape) is not tuple:
        return False
    outputs = op.outputs
    if position < 0 or position >= len(outputs):
        return False
    index = outputs[position]
    if type(index) is not int or index < 0:
        return False
    t = ctx.graph.tensors[index]
    declared = t.shape
    if type(declared) is not tuple or len(declared) != len(shape):
        return False
    cdef int64_t product = 1, d
    cdef Py_ssize_t i
    for i in range(len(shape)):
        v = shape[i]
        if type(v) is not int or not (0 <= v <= MAX_EXTENT) or declared[i] != v:
            return False
        d = v
        if d == 0:          # an empty tensor: Ctx.set_output checks its other dimensions
            return False
        if product > SHAPE_PRODUCT_LIMIT // d:
            return False
        product *= d
    if index in ctx.constants:
        return False
    shapes = ctx.shapes
    producers = ctx.producers
    if index in shapes and producers.get(index) is not op:
        return False
    if product * t.dtype.itemsize > ctx.max_tensor_bytes:
        return False
    producers[index] = op
    shapes[index] = shape
    return True
