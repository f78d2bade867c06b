"""Facts about this CPU that concern the peers edgeml is compared with (edgeml's own kernel choice is made in C,
cython_ops/include/em_isa.h)."""
from __future__ import annotations

import platform
from functools import lru_cache

VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset:
    """The feature flags /proc/cpuinfo lists for the first CPU (empty where there is no such file)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def onnxruntime_int8_saturates() -> bool:
    """True on x86-64 CPUs without VNNI, where onnxruntime's uint8 x int8 GEMMs (MLAS: vpmaddubsw, then vpmaddwd
    with ones) saturate each pair of products at int16: a QLinearConv / QDQ model whose weights use the full int8
    range then gets results that are not the operators' arithmetic (edgeml computes the exact sums everywhere, as
    onnxruntime does with VNNI and on arm64)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    return not (VNNI_FLAGS & cpu_flags())
