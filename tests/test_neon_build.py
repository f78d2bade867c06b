"""The aarch64 (NEON) build: every kernel header cross-compiles with aarch64-linux-gnu-gcc, the NEON GEMM is
really emitted, and -- where qemu-aarch64 can run the result -- it equals the portable scalar GEMM exactly in
every requantization mode.  Skips with the reason when the cross compiler (or qemu) is absent."""
import shutil
import subprocess

import pytest
from pathlib import Path

INCLUDE = Path(__file__).resolve().parents[1] / "cython_ops" / "include"
CC = "aarch64-linux-gnu-gcc"
FLAGS = ["-O2", "-ffp-contract=off", "-fno-strict-aliasing", "-Wall", "-Werror=implicit-function-declaration"]

ALL_HEADERS = r'''
#include "em_im2col.h"
#include "em_conv.h"
#include "em_depthwise.h"
#include "em_fully_connected.h"
#include "em_elementwise.h"
#include "em_pool.h"
#include "em_reduce.h"
#include "em_shape.h"
#include "em_activations.h"
#include "em_activation_steps.h"
#include "em_hybrid.h"
#include "em_onnx_quantize.h"
#include "em_onnx_qlinear.h"
#include "em_onnx_conv.h"
#include "em_q16.h"
#include "em_lstm_dots.h"
#include "em_lstm_int8.h"
#include "em_lstm_f32.h"
#include "em_onnx_rnn.h"
#include "em_lstm_hybrid.h"
#include "em_math_unary.h"
#include "em_math_binary.h"
#include "em_normalize.h"
#include "em_batch_matmul.h"
#include "em_grouped_conv.h"
#include "em_sparse.h"
#include "em_space.h"
em_kernel em_neon_check_kernels[] = {em_conv2d_int8, em_fully_connected_int8, em_depthwise_int8, em_add_int8,
                                     em_conv2d_hybrid, em_fully_connected_hybrid, em_depthwise_hybrid,
                                     em_lstm_int8, em_lstm_f32, em_onnx_rnn_f32, em_onnx_rnn_s8, em_lstm_hybrid};
'''

# NEON GEMM against the scalar GEMM on random shapes (K not a multiple of 16, odd N) in modes 0-3.
GEMM_CHECK = r'''
#include <stdio.h>
#include <stdlib.h>
#include "em_gemm.h"
static uint32_t state = 12345;
static int32_t rnd(int32_t lo, int32_t hi) { state = state * 1103515245u + 12345u; return lo + (int32_t)((state >> 8) % (uint32_t)(hi - lo + 1)); }
int main(void) {
    int bad = 0;
    for (int trial = 0; trial < 200; trial++) {
        int64_t M = rnd(1, 5), N = rnd(1, 37), K = rnd(1, 150);
        int8_t* A = malloc(M * K); int8_t* B = malloc(N * K);
        int8_t* c1 = malloc(M * N); int8_t* c2 = malloc(M * N);
        int32_t* bias = malloc(N * 4); int32_t* mult = malloc(N * 4); int32_t* shift = malloc(N * 4);
        double* scale = malloc(N * 8); float* fscale = malloc(N * 4);
        for (int64_t i = 0; i < M * K; i++) A[i] = (int8_t)rnd(-128, 127);
        for (int64_t i = 0; i < N * K; i++) B[i] = (int8_t)rnd(-127, 127);
        for (int64_t n = 0; n < N; n++) {
            bias[n] = rnd(-20000, 20000); mult[n] = rnd(1 << 30, 0x7fffffff); shift[n] = rnd(-14, 0);
            scale[n] = (double)mult[n] / 2147483648.0 / (double)(1 << (-shift[n]));
            fscale[n] = (float)scale[n];
        }
        for (int mode = 0; mode < 4; mode++) {
            em_requant_cols rq = {bias, mult, shift, rnd(-128, 127), -128, 127, mode, scale, fscale};
            em_gemm_s8_requant_scalar(A, K, B, M, N, K, c1, N, &rq);
            em_gemm_s8_requant_neon(A, K, B, M, N, K, c2, N, &rq);
            for (int64_t i = 0; i < M * N; i++) if (c1[i] != c2[i]) bad++;
        }
        free(A); free(B); free(c1); free(c2); free(bias); free(mult); free(shift); free(scale); free(fscale);
    }
    printf(bad ? "mismatch %d\n" : "ok\n", bad);
    return bad != 0;
}
'''


def _compiler():
    if shutil.which(CC) is None:
        pytest.skip(f"{CC} is not installed (apt-get install gcc-aarch64-linux-gnu)")


def test_kernel_headers_cross_compile_for_aarch64_with_neon(tmp_path):
    _compiler()
    src = tmp_path / "all_headers.c"
    src.write_text(ALL_HEADERS)
    obj = tmp_path / "all_headers.o"
    done = subprocess.run([CC, *FLAGS, "-c", f"-I{INCLUDE}", str(src), "-o", str(obj)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    objdump = shutil.which("aarch64-linux-gnu-objdump")
    if objdump:
        asm = subprocess.run([objdump, "-d", str(obj)], capture_output=True, text=True, timeout=120).stdout
        assert "sadalp" in asm and "smull" in asm, "the NEON GEMM (vmull_s8 / vpadalq_s16) was not emitted"


def test_neon_gemm_equals_scalar_in_every_mode_under_qemu(tmp_path):
    _compiler()
    qemu = shutil.which("qemu-aarch64") or shutil.which("qemu-aarch64-static")
    if qemu is None:
        pytest.skip("qemu-aarch64 is not installed (apt-get install qemu-user), so the aarch64 binary cannot run")
    src = tmp_path / "gemm_check.c"
    src.write_text(GEMM_CHECK)
    exe = tmp_path / "gemm_check"
    done = subprocess.run([CC, *FLAGS, "-static", f"-I{INCLUDE}", str(src), "-o", str(exe), "-lm"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    run = subprocess.run([qemu, str(exe)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stdout + run.stderr
