"""Builds the Cython kernel modules; metadata lives in pyproject.toml.

No -march=native: a wheel built here must run on any x86-64 / aarch64. ISA-specific code paths are
compiled per function (target attributes) and chosen at run time from CPU features.
"""
import glob
import os

from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
INCLUDE = os.path.join("cython_ops", "include")
FAMILIES = ["engine", "conv", "pool", "elementwise", "shape", "reduce", "activation", "onnx_ops", "rnn"]
FAMILIES += ["math_ops", "space_ops"]     # element-wise math, normalizations, matmul, space / batch / depth moves
# -ffp-contract=off: no fused multiply-add, so float kernels round like the reference kernels.
COMPILE_ARGS = ["-O3", "-ffp-contract=off", "-fno-strict-aliasing"]

# every kernel header: a change to any of them rebuilds the extensions (they include each other freely)
HEADERS = sorted(glob.glob(os.path.join(INCLUDE, "*.h"))) + [os.path.join("cython_ops", "em_params.pxd")]

extensions = [
    Extension(
        f"cython_ops.{name}",
        [os.path.join("cython_ops", f"{name}.pyx")],
        include_dirs=[INCLUDE, "cython_ops"],
        depends=HEADERS,
        extra_compile_args=COMPILE_ARGS,
    )
    for name in FAMILIES
]

setup(ext_modules=cythonize(extensions, compiler_directives={"language_level": "3"}, include_path=["."]))
