"""The kernel table and the instruction-set path, chosen once per process (as XNNPACK's init-time configs).

cython_ops/include/em_isa.h decides the path from the CPU's features (EDGEML_ISA may force a lower one) and caches
it; the C kernels' inner dispatch reads that same decision.  Here it is read once and turned into the choice
each op family makes at load: which kernel runs and which weight packing it reads.
"""
from __future__ import annotations

from dataclasses import dataclass

from cython_ops import (activation, control, conv, detection, elementwise, engine, index, int16x8, math_ops,
                        onnx_ops, pool, reduce, rnn, shape, space_ops, svdf, transpose_conv)
from cython_ops import float_ops, onnx_float_ops
from cython_ops import sparse

ISA = conv.isa()            # "scalar", "avx2", "avxvnni", "avx512", "avx512vnni"; "neon", "neon_dotprod", "neon_i8mm"
# (aarch64: the portable kernel names, whose C bodies take the NEON / SDOT / SMMLA forms from the same decision)


@dataclass(frozen=True)
class KernelConfig:
    isa: str
    conv2d_int8: str             # conv2d_int8_vnni / _avxvnni (u8 x s8 vpdpbusd, 512 / 256 bits), conv2d_int8_avx2
    #                              (int16 panels), conv2d_int8 (portable)
    fully_connected_int8: str    # the same four forms
    depthwise_int8: str          # depthwise_int8_vnni / _avxvnni / _avx2 (em_depthwise_simd.h), or the portable one
    binary_int8_avx512: bool     # ADD / SUB / MUL with equal shapes or a single-element input
    lstm_u8s8: bool              # int8 recurrent sums in the u8 x s8 packing (packing.pack_u8s8)
    float_lstm_fused: bool       # the AVX-512 fused float LSTM step (gates interleaved by 16-unit block)
    # float32 SIMD kernels (em_float_*.h; the reference's operations in its order, or fused multiply-adds):
    # "avx512", "avx2" or "" (portable)
    float_simd: str = ""
    float_fma: bool = False      # the CPU has FMA3: the fused twins (*_f32_fma_*) of those kernels may run


def config_for(isa: str) -> KernelConfig:
    vnni = isa == "avx512vnni"
    gemm = {"avx512vnni": "vnni", "avxvnni": "avxvnni", "avx512": "avx2", "avx2": "avx2"}.get(isa, "")
    return KernelConfig(
        isa=isa,
        conv2d_int8="conv2d_int8" + (f"_{gemm}" if gemm else ""),
        fully_connected_int8="fully_connected_int8" + (f"_{gemm}" if gemm else ""),
        depthwise_int8="depthwise_int8" + (f"_{gemm}" if gemm else ""),
        binary_int8_avx512=vnni,
        lstm_u8s8=isa in ("avx512vnni", "avxvnni"),     # 512-bit or 256-bit (AVX-VNNI) vpdpbusd
        float_lstm_fused=isa in ("avx512", "avx512vnni"),
        float_simd="avx512" if isa in ("avx512", "avx512vnni") else ("avx2" if isa in ("avx2", "avxvnni") else ""),
        float_fma=isa != "scalar" and float_ops.cpu_has_fma(),
    )


CONFIG = config_for(ISA)

KERNELS = {name: address for module in (conv, pool, elementwise, shape, reduce, activation, onnx_ops, rnn, int16x8,
                                        transpose_conv, index, math_ops, space_ops, control, svdf,
                                        detection, onnx_float_ops, float_ops, sparse)
           for name, address in module.KERNELS.items()}

Engine = engine.Engine


def kernel_address(name: str) -> int:
    return KERNELS[name]
