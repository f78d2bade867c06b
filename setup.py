"""Builds the Cython kernel modules; metadata lives in pyproject.toml.

No -march=native: a wheel built here must run on any x86-64 / aarch64. ISA-specific code paths are
compiled per function (target attributes) and chosen at run time from CPU features.

EDGEML_SANITIZE=1 builds the kernels with AddressSanitizer and UndefinedBehaviorSanitizer (for testing only; run
Python with the sanitizer runtimes preloaded, see README "Fuzzing and sanitizers").
"""
import glob
import os

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class BuildExt(build_ext):
    """Compiles the extension modules in parallel, one job per CPU, unless --parallel / -j says otherwise (the
    install command of the README builds them all: about half the time on two cores)."""

    def finalize_options(self):
        super().finalize_options()
        if not self.parallel:
            self.parallel = os.cpu_count() or 1

HERE = os.path.dirname(os.path.abspath(__file__))
INCLUDE = os.path.join("cython_ops", "include")
FAMILIES = ["engine", "conv", "pool", "elementwise", "shape", "reduce", "activation", "onnx_ops", "rnn", "int16x8",
            "transpose_conv", "index", "math_ops", "space_ops", "control", "svdf", "detection"]
FAMILIES += ["onnx_float_ops"]          # the ONNX ops TFLite has no twin for (issue 19 part B)
FAMILIES += ["float_ops"]      # float32 SIMD kernels (issue 21)
FAMILIES += ["sparse"]         # block-sparse int8 conv / FC kernels (issue 20)
FAMILIES += ["load_pack"]      # load-time helpers of the weight packers (issue 15; no kernels)
FAMILIES += ["tflite_read"]    # the .tflite flatbuffer walker of converters/tflite.py (issue 15; no kernels)
FAMILIES += ["tflite_hold"]    # uint8 .tflite tensors held as int8 (converters/tflite_uint8.py; no kernels)
FAMILIES += ["load_depthwise"]  # the int8 vector depthwise prepare's constants in one call (issue 15; no kernels)
FAMILIES += ["load_prepare"]   # the int8 CONV_2D / FULLY_CONNECTED prepare in one call (issue 15; no kernels)
FAMILIES += ["load_ops"]       # the cheap ops' prepares (ADD / SUB / MUL, ...) in one call (issue 15; no kernels)
FAMILIES += ["load_shell"]     # the int8 conv / FC prepares' reading and checks in one call (issue 15; no kernels)
FAMILIES += ["load_tables"]    # the load-time 256-entry tables in one call (issue 15; no kernels)
FAMILIES += ["load_pad"]       # PAD's prepare in one call (issue 15; no kernels)
FAMILIES += ["load_activations"]  # the int8 SOFTMAX / LOGISTIC / TANH prepares in one call (issue 15; no kernels)
FAMILIES += ["load_resize"]    # RESIZE_BILINEAR / RESIZE_NEAREST_NEIGHBOR prepares in one call (issue 15; no kernels)
FAMILIES += ["load_detection"]  # DETECTION_POSTPROCESS anchors in one pass (issue 15; no kernels)
FAMILIES += ["load_index"]     # TILE's prepare in one call (issue 15; no kernels)
FAMILIES += ["load_gemm"]      # the int8 CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED step in one call (issue 15)
FAMILIES += ["load_concat"]    # the rescaling uint8 CONCATENATION's prepare in one call (issue 15; no kernels)
FAMILIES += ["load_winograd"]  # the int8 Winograd conv's weight transform and kept arrays in one call (issue 15)
FAMILIES += ["load_shape"]     # SHAPE / PACK / a constant's STRIDED_SLICE folded in one call (issue 15; no kernels)
FAMILIES += ["load_reduce"]     # REDUCE_MAX / REDUCE_MIN's prepare in one call (issue 15; no kernels)
FAMILIES += ["load_loop"]      # compile.prepare_steps' loop over the ops in one call (issue 15; no kernels)
FAMILIES += ["callpath"]       # Interpreter's set_input / invoke / get_output / run in C (issue 15; no kernels)
# -ffp-contract=off: no fused multiply-add, so float kernels round like the reference kernels.
COMPILE_ARGS = ["-O3", "-ffp-contract=off", "-fno-strict-aliasing"]
LINK_ARGS = []
if os.environ.get("EDGEML_SANITIZE") == "1":
    SANITIZERS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer"]
    COMPILE_ARGS = ["-O1", "-g", "-ffp-contract=off", "-fno-strict-aliasing"] + SANITIZERS
    LINK_ARGS = SANITIZERS

# every kernel header: a change to any of them rebuilds the extensions (they include each other freely)
HEADERS = sorted(glob.glob(os.path.join(INCLUDE, "*.h"))) + [os.path.join("cython_ops", "em_params.pxd")]

extensions = [
    Extension(
        f"cython_ops.{name}",
        [os.path.join("cython_ops", f"{name}.pyx")],
        include_dirs=[INCLUDE, "cython_ops"],
        depends=HEADERS,
        extra_compile_args=COMPILE_ARGS,
        extra_link_args=LINK_ARGS,
    )
    for name in FAMILIES
]

setup(ext_modules=cythonize(extensions, compiler_directives={"language_level": "3"}, include_path=["."],
                            nthreads=os.cpu_count() or 1),
      cmdclass={"build_ext": BuildExt})
