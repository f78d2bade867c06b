"""The aarch64 (NEON) build: every kernel header cross-compiles with aarch64-linux-gnu-gcc, the NEON GEMMs (plain,
SDOT, SMMLA) are really emitted, and -- where qemu-aarch64 can run the result -- each equals the portable scalar GEMM
exactly in every requantization mode.  Skips with the reason when the cross compiler (or qemu) is absent."""
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
            /* the vector requantization's edges: shifts past 31 either way, large sums that saturate or wrap */
            if (trial % 5 == 1) { shift[n] = rnd(-34, 3); bias[n] = rnd(-0x3fffffff, 0x3fffffff) * 2; }
            scale[n] = ldexp((double)mult[n] / 2147483648.0, shift[n]);
            fscale[n] = (float)scale[n];
        }
        for (int mode = 0; mode < 4; mode++) {
            em_requant_cols rq = {bias, mult, shift, rnd(-128, 127), -128, 127, mode, scale, fscale};
            em_gemm_s8_requant_scalar(A, K, B, M, N, K, c1, N, &rq);
            em_gemm_s8_requant_neon(A, K, B, M, N, K, c2, N, &rq);
            for (int64_t i = 0; i < M * N; i++) if (c1[i] != c2[i]) bad++;
            em_gemm_s8_requant_neon_dotprod(A, K, B, M, N, K, c2, N, &rq);
            for (int64_t i = 0; i < M * N; i++) if (c1[i] != c2[i]) bad++;
            em_gemm_s8_requant_neon_i8mm(A, K, B, M, N, K, c2, N, &rq);
            for (int64_t i = 0; i < M * N; i++) if (c1[i] != c2[i]) bad++;
        }
        free(A); free(B); free(c1); free(c2); free(bias); free(mult); free(shift); free(scale); free(fscale);
    }
    printf(bad ? "mismatch %d\n" : "ok\n", bad);
    return bad != 0;
}
'''

# NEON depthwise sums and the 4-wide requantization against the portable ones: random windows partly outside the
# image, dilation, channel counts around the 8 / 16 blocks, multipliers 1 and 2, every mode.
DEPTHWISE_CHECK = r'''
#include <stdio.h>
#include <stdlib.h>
#include "em_depthwise.h"
static uint32_t state = 777;
static int32_t rnd(int32_t lo, int32_t hi) { state = state * 1103515245u + 12345u; return lo + (int32_t)((state >> 8) % (uint32_t)(hi - lo + 1)); }
int main(void) {
    int bad = 0;
    for (int trial = 0; trial < 300; trial++) {
        int64_t IH = rnd(1, 9), IW = rnd(1, 9), IC = rnd(1, 41), DM = rnd(1, 4) == 4 ? 2 : 1, OC = IC * DM;
        int64_t KH = rnd(1, 4), KW = rnd(1, 4), dh = rnd(1, 2), dw = rnd(1, 2);
        int8_t* img = malloc(IH * IW * IC); int8_t* w = malloc(KH * KW * OC);
        int32_t* a1 = malloc(OC * 4); int32_t* a2 = malloc(OC * 4);
        for (int64_t i = 0; i < IH * IW * IC; i++) img[i] = (int8_t)rnd(-128, 127);
        for (int64_t i = 0; i < KH * KW * OC; i++) w[i] = (int8_t)rnd(-127, 127);
        int32_t zp = rnd(-128, 127);
        int64_t y0 = rnd(-3, (int32_t)IH), x0 = rnd(-3, (int32_t)IW);
        for (int64_t c = 0; c < OC; c++) a1[c] = a2[c] = rnd(-1000, 1000);
        em_depthwise_accumulate_s8(img, w, IH, IW, IC, OC, KH, KW, DM, y0, x0, dh, dw, zp, a1);
        em_depthwise_accumulate_s8_neon(img, w, IH, IW, IC, OC, KH, KW, DM, y0, x0, dh, dw, zp, a2);
        for (int64_t c = 0; c < OC; c++) if (a1[c] != a2[c]) bad++;
        int32_t* bias = malloc(OC * 4); int32_t* mult = malloc(OC * 4); int32_t* shift = malloc(OC * 4);
        int8_t* o1 = malloc(OC); int8_t* o2 = malloc(OC);
        for (int64_t c = 0; c < OC; c++) {
            bias[c] = rnd(-0x3fffffff, 0x3fffffff) / (trial % 3 ? 30000 : 1);
            mult[c] = rnd(1 << 30, 0x7fffffff); shift[c] = trial % 4 ? rnd(-20, 2) : rnd(-34, 31);
            a1[c] = rnd(-0x3fffffff, 0x3fffffff) / (trial % 2 ? 1 : 100000);
        }
        for (int mode = 0; mode < 2; mode++) {
            em_requant_cols rq = {bias, mult, shift, rnd(-128, 127), rnd(-128, 0), rnd(0, 127), mode, NULL, NULL};
            for (int64_t c = 0; c < OC; c++) o1[c] = em_requant_one(a1[c], (int)c, &rq);
            em_requant_row_neon(a1, 0, OC, &rq, o2);
            for (int64_t c = 0; c < OC; c++) if (o1[c] != o2[c]) bad++;
        }
        free(img); free(w); free(a1); free(a2); free(bias); free(mult); free(shift); free(o1); free(o2);
    }
    printf(bad ? "mismatch %d\n" : "ok\n", bad);
    return bad != 0;
}
'''

# NEON ADD / SUB / MUL against the portable kernels (the ISA switched in-process): broadcasts along the inner
# dimension (stride 0) and across outer ones, inner lengths around the 8-wide blocks, both rounding modes.
BINARY_CHECK = r'''
#include <stdio.h>
#include <stdlib.h>
#include "em_elementwise.h"
static uint32_t state = 4242;
static int32_t rnd(int32_t lo, int32_t hi) { state = state * 1103515245u + 12345u; return lo + (int32_t)((state >> 8) % (uint32_t)(hi - lo + 1)); }
int main(void) {
    int bad = 0;
    static int8_t x1[4096], x2[4096], y1[4096], y2[4096];
    for (int trial = 0; trial < 400; trial++) {
        em_params p;
        memset(&p, 0, sizeof p);
        int64_t outer = rnd(1, 5), inner = rnd(1, 40);
        int64_t* d = p.i;
        for (int j = 0; j < 6; j++) d[EM_BINARY_I_DIMS + j] = 1;
        d[EM_BINARY_I_DIMS + 4] = outer; d[EM_BINARY_I_DIMS + 5] = inner;
        int form1 = rnd(0, 2), form2 = rnd(0, 2);   /* 0 full, 1 broadcast along inner, 2 one element */
        d[EM_BINARY_I_STRIDES1 + 4] = form1 == 0 ? inner : (form1 == 1 ? 1 : 0);
        d[EM_BINARY_I_STRIDES1 + 5] = form1 == 0 ? 1 : 0;
        d[EM_BINARY_I_STRIDES2 + 4] = form2 == 0 ? inner : (form2 == 1 ? 1 : 0);
        d[EM_BINARY_I_STRIDES2 + 5] = form2 == 0 ? 1 : 0;
        for (int i = 0; i < 4096; i++) { x1[i] = (int8_t)rnd(-128, 127); x2[i] = (int8_t)rnd(-128, 127); }
        p.ptr[EM_BINARY_P_INPUT1] = x1; p.ptr[EM_BINARY_P_INPUT2] = x2;
        int mul = trial % 3 == 2;
        if (mul) {
            d[EM_MUL_I_ZP1] = rnd(-128, 127); d[EM_MUL_I_ZP2] = rnd(-128, 127); d[EM_MUL_I_OUT_ZP] = rnd(-128, 127);
            d[EM_MUL_I_MULT] = rnd(1 << 30, 0x7fffffff); d[EM_MUL_I_SHIFT] = rnd(-18, 1);
            d[EM_MUL_I_ACT_MIN] = rnd(-128, -100); d[EM_MUL_I_ACT_MAX] = rnd(100, 127); d[EM_MUL_I_MODE] = trial % 2;
        } else {
            d[EM_ADD_I_ZP1] = rnd(-128, 127); d[EM_ADD_I_ZP2] = rnd(-128, 127); d[EM_ADD_I_OUT_ZP] = rnd(-128, 127);
            d[EM_ADD_I_LEFT_SHIFT] = trial % 4 ? 20 : 15;
            d[EM_ADD_I_MULT1] = rnd(1 << 30, 0x7fffffff); d[EM_ADD_I_SHIFT1] = rnd(-5, 0);
            d[EM_ADD_I_MULT2] = rnd(1 << 30, 0x7fffffff); d[EM_ADD_I_SHIFT2] = rnd(-5, 0);
            d[EM_ADD_I_OUT_MULT] = rnd(1 << 30, 0x7fffffff); d[EM_ADD_I_OUT_SHIFT] = rnd(-22, -14);
            d[EM_ADD_I_ACT_MIN] = -128; d[EM_ADD_I_ACT_MAX] = 127; d[EM_ADD_I_MODE] = trial % 2;
            d[EM_ADD_I_SIGN] = trial % 5 == 0 ? -1 : 1;
        }
        em_kernel k = mul ? em_mul_int8 : em_add_int8;
        em_isa_cached = EM_ISA_SCALAR;
        p.ptr[EM_BINARY_P_OUTPUT] = y1; k(&p);
        em_isa_cached = EM_ISA_NEON;
        p.ptr[EM_BINARY_P_OUTPUT] = y2; k(&p);
        for (int64_t i = 0; i < outer * inner; i++) if (y1[i] != y2[i]) bad++;
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
        assert "sdot" in asm, "the dot-product GEMM (vdotq_s32) was not emitted"
        assert "smmla" in asm, "the i8mm GEMM (vmmlaq_s32) was not emitted"


def _run_under_qemu(tmp_path, source):
    _compiler()
    qemu = shutil.which("qemu-aarch64") or shutil.which("qemu-aarch64-static")
    if qemu is None:
        pytest.skip("qemu-aarch64 is not installed (apt-get install qemu-user), so the aarch64 binary cannot run")
    src = tmp_path / "check.c"
    src.write_text(source)
    exe = tmp_path / "check"
    done = subprocess.run([CC, *FLAGS, "-static", f"-I{INCLUDE}", str(src), "-o", str(exe), "-lm"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    # -cpu max has the dot-product and i8mm extensions, so all three NEON GEMMs run
    run = subprocess.run([qemu, "-cpu", "max", str(exe)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stdout + run.stderr


def test_neon_gemms_equal_scalar_in_every_mode_under_qemu(tmp_path):
    _run_under_qemu(tmp_path, GEMM_CHECK)


def test_neon_depthwise_sums_and_vector_requantization_equal_scalar_under_qemu(tmp_path):
    _run_under_qemu(tmp_path, DEPTHWISE_CHECK)


def test_neon_add_sub_mul_equal_scalar_under_qemu(tmp_path):
    _run_under_qemu(tmp_path, BINARY_CHECK)
