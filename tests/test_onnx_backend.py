"""onnx's own node test cases (onnx.backend.test.case.node) on edgeml: every case whose ops the reader
translates runs; it must match the case's expected outputs (the case's rtol/atol for float, exact for
integers) or raise UnsupportedOpError for one of the documented reasons below (then it is skipped)."""
import re

import pytest

import edgeml
from tests.onnx_backend import candidate_cases, run_case

CASES = candidate_cases()

# What edgeml does not implement within the supported ops, as the UnsupportedOpError says it.
NOT_IMPLEMENTED = {
    r"(element|tensor) type (FLOAT16|DOUBLE|BFLOAT16|UINT32|UINT64|FLOAT8\w*|U?INT[24]|FLOAT4E2M1|STRING)\b"
    r"|Cast from \w+ to (float16|float64)|dequantizing u?int16":
        "tensor type (float16, float64, bfloat16, float8, int4 / int2, uint32 / uint64, string; int16 quantization)",
    r"ONNX opset [1-6] is not supported": "opsets below 7",
    r"its output size would depend on run-time values": "output shapes that depend on run-time values",
    r"rank \d+ > 6|rank > 6": "tensors of rank above 6",
    r"only 1-D and 2-D ConvTranspose": "3-D ConvTranspose",
    r"MaxPool indices output": "MaxPool indices",
    r"Dropout mask output|Dropout in training mode|BatchNormalization in training mode":
        "training-mode Dropout / BatchNormalization",
    r"is not a tensor": "sequence / optional types",
    r"scale of type float16": "float16 scales",
    r"per-axis dequantization of a non-constant|only per-tensor quantization to int8 / uint8|blocked quantization":
        "per-axis activations, blocked or 16-bit QuantizeLinear",
    r"declares no inputs": "models without inputs",
    r"empty tensors": "zero-size tensors",
}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_onnx_node_case(case):
    try:
        run_case(case)
    except edgeml.UnsupportedOpError as exc:
        for pattern, what in NOT_IMPLEMENTED.items():
            if re.search(pattern, str(exc)):
                pytest.skip(f"not implemented: {what} ({exc})")
        raise


def test_node_cases_cover_the_issue_op_set():
    """The filter keeps the cases of every op the issue lists (so the backend test cannot silently shrink)."""
    names = {c.name for c in CASES}
    for prefix in ("test_conv_", "test_qlinearconv", "test_qlinearmatmul_2D", "test_convinteger_",
                   "test_matmulinteger", "test_dynamicquantizelinear", "test_gemm_", "test_averagepool_2d",
                   "test_maxpool_2d", "test_globalaveragepool", "test_softmax_", "test_concat_", "test_reshape_",
                   "test_flatten_", "test_transpose_", "test_squeeze", "test_unsqueeze_", "test_reduce_mean_",
                   "test_clip", "test_relu", "test_sigmoid", "test_add", "test_mul", "test_quantizelinear",
                   "test_dequantizelinear", "test_constant_pad",
                   # issue 19 part B: what PyTorch / Keras float exports contain
                   "test_convtranspose", "test_batchnorm_epsilon", "test_layer_normalization_2d", "test_gelu_tanh",
                   "test_erf", "test_pow", "test_sqrt", "test_reciprocal", "test_div", "test_exp", "test_log",
                   "test_abs", "test_neg", "test_max_", "test_min_", "test_reduce_max", "test_reduce_min",
                   "test_reduce_sum_", "test_reduce_prod", "test_reduce_l2", "test_argmax", "test_argmin",
                   "test_resize_upsample_scales_linear", "test_resize_downsample_scales_nearest",
                   "test_upsample_nearest", "test_split_", "test_tile", "test_where_", "test_equal", "test_less",
                   "test_greater", "test_not", "test_cast_", "test_constantofshape", "test_range_", "test_einsum",
                   "test_instancenorm", "test_prelu", "test_elu", "test_selu", "test_softplus", "test_hardsigmoid",
                   "test_mish", "test_logsoftmax", "test_depthtospace", "test_spacetodepth", "test_edge_pad",
                   "test_reflect_pad", "test_top_k", "test_averagepool_1d", "test_maxpool_1d", "test_matmul_3d",
                   "test_shape"):
        assert any(n.startswith(prefix) for n in names), prefix
