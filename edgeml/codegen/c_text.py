"""The text of the generated files: NAME.h (API, sizes, tensor documentation), NAME.c (const buffers, the static
arena, the parameter table and NAME_invoke as a straight sequence of kernel calls), main.c and the Makefile."""
from __future__ import annotations

import math
from dataclasses import dataclass

PARAMS_STRUCT_BYTES = 16 * 8 + 64 * 8 + 8 * 4     # em_params (em_params.h) on a 64-bit target
ISA_LEVELS = {"scalar": "EM_ISA_SCALAR", "avx2": "EM_ISA_AVX2", "avxvnni": "EM_ISA_AVXVNNI",
              "avx512": "EM_ISA_AVX512", "avx512vnni": "EM_ISA_AVX512VNNI"}
ERR_CPU, ERR_ENDIAN, ERR_INPUT, ERR_STEP = 1, 2, 100, 1000
BYTES_PER_LINE = 24


@dataclass
class Unit:
    name: str
    target: str
    isa: str
    arena_bytes: int
    steps: list          # generate.CStep
    symbols: dict        # region index -> C symbol
    blobs: list          # (symbol, bytes), each emitted 64-byte aligned
    inputs: list         # generate.CTensor
    outputs: list
    variables: list      # (arena offset, bytes, fill value)
    prefix: str = ""     # of its internal symbols (a variant of a dispatching build: NAME_<isa>); default NAME

    def __post_init__(self):
        self.prefix = self.prefix or self.name


def c_string(text: str) -> str:
    return '"' + "".join(c if c.isprintable() and c not in '"\\?' and c.isascii() else f"\\{ord(c) & 0xff:03o}"
                         for c in text) + '"'


def tensor_doc(kind: str, i: int, t) -> str:
    q = ""
    if t.scale is not None:
        if len(t.scale) == 1:
            q = f", scale {t.scale[0]!r}, zero point {t.zero_point[0]}"
        else:
            q = f", per-axis quantization on axis {t.axis} ({len(t.scale)} scales)"
    rng = f"; invoke checks values in [{t.value_range[0]}, {t.value_range[1]}] ({t.value_range[2]})" \
        if t.value_range else ""
    name = t.name.replace("*/", "* /")
    return f" * {kind} {i} '{name}': {t.dtype.name} {list(t.shape)}, {t.nbytes} bytes{q}{rng}"


def header(u: Unit) -> str:
    n, N = u.name, u.name.upper()
    lines = [f"/* {n}: a model compiled to C by `edgeml compile` (target {u.target}, {u.isa} kernels).",
             f" * No allocation, no file I/O: one static arena, weights as const arrays, {n}_invoke() a straight",
             f" * sequence of kernel calls.  Write the inputs through {n}_input(i), call {n}_invoke(), read the",
             f" * outputs through {n}_output(i) (valid until the next invoke).  One instance per program: the",
             " * functions share the static arena, so call them from one thread at a time.",
             " * Tensors are row-major (channels last for images), native endian; a quantized value q means",
             " * scale * (q - zero point).",
             " *"]
    lines += [tensor_doc("input", i, t) for i, t in enumerate(u.inputs)]
    lines += [tensor_doc("output", i, t) for i, t in enumerate(u.outputs)]
    lines += [" */", f"#ifndef {N}_H", f"#define {N}_H", "#include <stddef.h>", "",
              "#ifdef __cplusplus", 'extern "C" {', "#endif", "",
              f"#define {N}_ARENA_BYTES {u.arena_bytes}   /* RAM: activations, scratch, state */",
              f"#define {N}_WEIGHT_BYTES {sum(len(d) for _, d in u.blobs)}   /* const: packed weights, "
              "tables, constants */",
              f"#define {N}_PARAMS_BYTES {len(u.steps) * PARAMS_STRUCT_BYTES}   /* const: the steps' parameters */",
              f"#define {N}_NUM_STEPS {len(u.steps)}",
              f"#define {N}_NUM_INPUTS {len(u.inputs)}", f"#define {N}_NUM_OUTPUTS {len(u.outputs)}"]
    lines += [f"#define {N}_INPUT{i}_BYTES {t.nbytes}" for i, t in enumerate(u.inputs)]
    lines += [f"#define {N}_OUTPUT{i}_BYTES {t.nbytes}" for i, t in enumerate(u.outputs)]
    lines += ["", "/* NAME_invoke's results; NAME_error_message(code) says what went wrong */",
              f"#define {N}_OK 0",
              f"#define {N}_ERR_CPU {ERR_CPU}          /* the CPU lacks the instruction set the weights are packed for */",
              f"#define {N}_ERR_ENDIAN {ERR_ENDIAN}       /* the constants are little-endian; this CPU is not */",
              f"#define {N}_ERR_INPUT {ERR_INPUT}      /* + input index: a value outside its documented range */",
              f"#define {N}_ERR_STEP {ERR_STEP}      /* + step index: a kernel found a run-time index out of range */",
              "",
              f"void* {n}_input(int i);            /* NULL when i is not an input */",
              f"void* {n}_output(int i);",
              f"size_t {n}_input_bytes(int i);",
              f"size_t {n}_output_bytes(int i);",
              f"int {n}_invoke(void);              /* {N}_OK or an error code */",
              f"void {n}_reset(void);              /* state tensors (e.g. an LSTM's) back to their zero point */",
              f"const char* {n}_error_message(int code);",
              "", "#ifdef __cplusplus", "}", "#endif", "#endif", ""]
    return "\n".join(lines)


def int_literal(v: int) -> str:
    if v == -(1 << 63):
        return "(-INT64_C(9223372036854775807) - 1)"
    return f"INT64_C({v})" if not -(1 << 31) < v < (1 << 31) else str(v)


def float_literal(v: float) -> str:
    if math.isnan(v):
        return "NAN"
    if math.isinf(v):
        return "INFINITY" if v > 0 else "-INFINITY"
    return v.hex()      # exact; converted to float as the Engine converts it


def pointer_literal(u: Unit, p) -> str:
    if p is None:
        return "0"
    where, offset = p
    if where == "arena":
        return f"(void*)({u.name}_arena + {offset})"       # one arena, shared by a dispatching build's variants
    return f"(void*)({u.symbols[where]} + {offset})"


def params_entry(u: Unit, k: int, s) -> str:
    ptrs = ", ".join(pointer_literal(u, p) for p in s.ptrs) or "0"
    ints = ", ".join(int_literal(v) for v in s.ints) or "0"
    floats = ", ".join(float_literal(v) for v in s.floats) or "0"
    return f"    /* {k}: {s.describe.replace('*/', '* /')} */\n    {{{{{ptrs}}}, {{{ints}}}, {{{floats}}}}},"


def blob_text(symbol: str, data: bytes) -> str:
    values = list(data)
    rows = [",".join(str(b) for b in values[i:i + BYTES_PER_LINE]) for i in range(0, len(values), BYTES_PER_LINE)]
    return f"EM_CODEGEN_ALIGN static const uint8_t {symbol}[{len(values)}] = {{\n" + ",\n".join(rows) + "\n};\n"


def source_prelude(u: Unit, headers: list) -> list:
    lines = [f"/* {u.name}: generated by `edgeml compile` (target {u.target}, {u.isa} kernels); do not edit. */",
             "#define EM_NO_THREADS 1      /* planned for one thread: no pool, no pthreads (em_threads.h) */"]
    if u.target == "generic":
        lines.append("#define EM_SCALAR_ONLY 1     /* portable scalar kernels only (em_isa.h) */")
    elif u.target == "x86-64":
        lines += ["#if !defined(__x86_64__)", f'#error "{u.name}.c was generated for x86-64"', "#endif"]
    else:
        lines += ["#if !defined(__aarch64__)", f'#error "{u.name}.c was generated for aarch64"', "#endif"]
    lines += ["#include <math.h>", "#include <stdint.h>", "#include <string.h>",
              "/* POSIX constants the kernels use, for a strict C99 <math.h> */",
              "#ifndef M_SQRT1_2", "#define M_SQRT1_2 0.70710678118654752440", "#endif",
              "#ifndef M_2_SQRTPI", "#define M_2_SQRTPI 1.12837916709551257390", "#endif",
              "#ifndef M_PI", "#define M_PI 3.14159265358979323846", "#endif",
              "#ifndef M_LN2", "#define M_LN2 0.69314718055994530942", "#endif",
              f'#include "{u.name}.h"', '#include "em_params.h"', '#include "em_isa.h"']
    lines += [f'#include "{h}"' for h in headers]
    lines += ["", "#if defined(__GNUC__) || defined(__clang__)",
              "#define EM_CODEGEN_ALIGN __attribute__((aligned(64)))",
              "#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L",
              "#define EM_CODEGEN_ALIGN _Alignas(64)",
              "#elif defined(_MSC_VER)", "#define EM_CODEGEN_ALIGN __declspec(align(64))",
              "#else", "#define EM_CODEGEN_ALIGN     /* the scalar kernels need no alignment */", "#endif", ""]
    return lines


def init_text(u: Unit) -> list:
    n, N = u.prefix, u.name.upper()
    lines = [f"static int {n}_ready = 0;", "", f"static int {n}_init(void) {{",
             "    const uint16_t one = 1;",
             f"    if (*(const uint8_t*)&one != 1) return {N}_ERR_ENDIAN;"]
    if u.target == "x86-64":
        level = ISA_LEVELS[u.isa]
        lines += [f"    if (em_isa() < {level}) return {N}_ERR_CPU;"]
        if u.isa == "avxvnni":
            lines += [f'    if (!__builtin_cpu_supports("avxvnni")) return {N}_ERR_CPU;']
        lines += [f"    em_isa_cached = {level};    /* the level the weights were packed for (as EDGEML_ISA) */"]
    lines += [f"    {n}_reset();", f"    {n}_ready = 1;", f"    return {N}_OK;", "}", ""]
    return lines


def range_checks(u: Unit) -> list:
    lines = []
    for i, t in enumerate(u.inputs):
        if not t.value_range or t.dtype.kind not in "iu":
            continue
        ctype = f"{'u' if t.dtype.kind == 'u' else ''}int{t.dtype.itemsize * 8}_t"
        count = t.nbytes // t.dtype.itemsize
        lo, hi = int(t.value_range[0]), int(t.value_range[1])
        lines += [f"    for (size_t j = 0; j < {count}; j++) {{",
                  f"        {ctype} v;",
                  f"        memcpy(&v, {u.name}_arena + {t.offset} + j * sizeof v, sizeof v);",
                  f"        if (v < {int_literal(lo)} || v > {int_literal(hi)}) return {u.name.upper()}_ERR_INPUT + {i};",
                  "    }"]
    return lines


def source(units: list) -> str:
    """NAME.c: one variant, or several (one per x86 level) and the functions that pick one at the first call."""
    u = units[0]
    lines = source_prelude(u, sorted({s.header for v in units for s in v.steps}))
    lines += [f"EM_CODEGEN_ALIGN static uint8_t {u.name}_arena[{max(max(v.arena_bytes for v in units), 1)}];", ""]
    blobs = {symbol: data for v in units for symbol, data in v.blobs}
    text = "\n".join(lines) + "\n" + "".join(blob_text(*b) for b in blobs.items())
    text += "".join(variant_text(v, public=len(units) == 1) for v in units)
    return text + ("" if len(units) == 1 else dispatch_text(units))


def variant_text(u: Unit, public: bool) -> str:
    """The parameter table and the API functions of one plan (static ones behind the dispatch when not public)."""
    n, N, api = u.prefix, u.name.upper(), "" if public else "static "
    lines = ["", f"static const em_params {n}_params[{max(len(u.steps), 1)}] = {{"]
    lines += [params_entry(u, k, s) for k, s in enumerate(u.steps)] or ["    {{0}, {0}, {0}}"]
    lines += ["};", ""]
    offsets = lambda ts: ", ".join(str(t.offset) for t in ts) or "0"
    sizes = lambda ts: ", ".join(str(t.nbytes) for t in ts) or "0"
    lines += [f"static const size_t {n}_input_offsets[] = {{{offsets(u.inputs)}}};",
              f"static const size_t {n}_input_sizes[] = {{{sizes(u.inputs)}}};",
              f"static const size_t {n}_output_offsets[] = {{{offsets(u.outputs)}}};",
              f"static const size_t {n}_output_sizes[] = {{{sizes(u.outputs)}}};", "",
              f"{api}void* {n}_input(int i) {{",
              f"    return i >= 0 && i < {len(u.inputs)} ? (void*)({u.name}_arena + {n}_input_offsets[i]) : 0;", "}",
              f"{api}void* {n}_output(int i) {{",
              f"    return i >= 0 && i < {len(u.outputs)} ? (void*)({u.name}_arena + {n}_output_offsets[i]) : 0;",
              "}",
              f"{api}size_t {n}_input_bytes(int i) {{ return i >= 0 && i < {len(u.inputs)} ? {n}_input_sizes[i] : 0; }}",
              f"{api}size_t {n}_output_bytes(int i) {{ return i >= 0 && i < {len(u.outputs)} ? {n}_output_sizes[i] : 0; "
              "}",
              "", f"{api}void {n}_reset(void) {{"]
    lines += [f"    memset({u.name}_arena + {off}, {fill & 0xff}, {nbytes});" for off, nbytes, fill in u.variables]
    lines += ["}", ""]
    lines += init_text(u)
    if any(s.checks for s in u.steps):
        lines += [f"static int32_t {n}_status(size_t offset) {{", "    int32_t v;",
                  f"    memcpy(&v, {u.name}_arena + offset, sizeof v);", "    return v;", "}", ""]
    lines += [f"{api}int {n}_invoke(void) {{",
              f"    if (!{n}_ready) {{", f"        int e = {n}_init();", "        if (e) return e;", "    }"]
    lines += range_checks(u)
    for k, s in enumerate(u.steps):
        lines.append(f"    {s.function}(&{n}_params[{k}]);")
        for off in s.checks:
            lines.append(f"    if ({n}_status({off})) return {N}_ERR_STEP + {k};")
    lines += [f"    return {N}_OK;", "}", "", f"{api}const char* {n}_error_message(int code) {{", "    switch (code) {",
              f'    case {N}_OK: return "ok";',
              f'    case {N}_ERR_CPU: return "this CPU lacks the {u.isa} instructions the model was compiled for";',
              f'    case {N}_ERR_ENDIAN: return "the model\'s constants are little-endian, this CPU is not";']
    for i, t in enumerate(u.inputs):
        if t.value_range:
            lines.append(f"    case {N}_ERR_INPUT + {i}: return "
                         + c_string(f"input {i} ('{t.name}'): values outside [{t.value_range[0]}, "
                                    f"{t.value_range[1]}] ({t.value_range[2]})") + ";")
    for k, s in enumerate(u.steps):
        if s.checks:
            lines.append(f"    case {N}_ERR_STEP + {k}: return "
                         + c_string(f"{s.describe}: a run-time index or length is out of range") + ";")
    lines += ['    default: return "unknown error";', "    }", "}", ""]
    return "\n".join(lines)


def dispatch_text(units: list) -> str:
    """The public API of a dispatching build: the first variant whose init accepts the CPU (highest level first)
    serves every call."""
    n, N = units[0].name, units[0].name.upper()
    lines = ["", f"static int {n}_variant = -1;", "", f"static int {n}_choose(void) {{",
             f"    int e = {N}_ERR_CPU;", f"    if ({n}_variant >= 0) return {N}_OK;"]
    for k, v in enumerate(units):
        lines += [f"    if ((e = {v.prefix}_init()) == {N}_OK) {{ {n}_variant = {k}; return e; }}"]
    lines += ["    return e;", "}", ""]
    calls = (("void*", "input", "int i", "i", "0"), ("void*", "output", "int i", "i", "0"),
             ("size_t", "input_bytes", "int i", "i", "0"), ("size_t", "output_bytes", "int i", "i", "0"),
             ("int", "invoke", "void", "", None), ("void", "reset", "void", "", ""),
             ("const char*", "error_message", "int code", "code", None))
    for ctype, fn, params, args, fail in calls:
        lines.append(f"{ctype} {n}_{fn}({params}) {{")
        if fn == "error_message":
            lines.append(f"    if ({n}_variant < 0) return {units[-1].prefix}_error_message(code);")
        elif fail is None:
            lines += [f"    int e = {n}_choose();", "    if (e) return e;"]
        else:
            lines.append(f"    if ({n}_choose()) return{' ' + fail if fail else ''};")
        lines.append(f"    switch ({n}_variant) {{")
        for k, v in enumerate(units):
            call = f"{v.prefix}_{fn}({args})"
            lines.append(f"    case {k}: {'' if ctype == 'void' else 'return '}{call};{' return;' if ctype == 'void' else ''}")
        lines += ["    }", f"    return{'' if ctype == 'void' else ' 0'};", "}"]
    return "\n".join(lines) + "\n"



def main_program(u: Unit) -> str:
    n = u.name
    return f"""/* Example program: ./{n}_main IN OUT [RUNS]
 * IN holds the raw bytes of the inputs, concatenated in input order (several such sets: one invoke each, in order);
 * OUT receives the raw outputs, concatenated, per set.  With RUNS, prints the median time of RUNS more invokes. */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "{n}.h"

static int by_value(const void* a, const void* b) {{
    double x = *(const double*)a, y = *(const double*)b;
    return (x > y) - (x < y);
}}

int main(int argc, char** argv) {{
    if (argc < 3 || argc > 4) {{
        fprintf(stderr, "usage: %s IN OUT [RUNS]\\n", argv[0]);
        return 2;
    }}
    size_t in_bytes = 0, out_bytes = 0;
    for (int i = 0; i < {n.upper()}_NUM_INPUTS; i++) in_bytes += {n}_input_bytes(i);
    for (int i = 0; i < {n.upper()}_NUM_OUTPUTS; i++) out_bytes += {n}_output_bytes(i);
    FILE* f = fopen(argv[1], "rb");
    if (!f) {{ perror(argv[1]); return 1; }}
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (size <= 0 || (size_t)size % in_bytes) {{
        fprintf(stderr, "%s: %ld bytes, not a multiple of the %zu input bytes\\n", argv[1], size, in_bytes);
        return 1;
    }}
    unsigned char* data = malloc((size_t)size);
    if (!data || fread(data, 1, (size_t)size, f) != (size_t)size) {{ fprintf(stderr, "cannot read %s\\n", argv[1]); return 1; }}
    fclose(f);
    FILE* out = fopen(argv[2], "wb");
    if (!out) {{ perror(argv[2]); return 1; }}
    for (size_t set = 0; set < (size_t)size / in_bytes; set++) {{
        const unsigned char* p = data + set * in_bytes;
        for (int i = 0; i < {n.upper()}_NUM_INPUTS; i++) {{
            memcpy({n}_input(i), p, {n}_input_bytes(i));
            p += {n}_input_bytes(i);
        }}
        int rc = {n}_invoke();
        if (rc) {{ fprintf(stderr, "invoke: %s (code %d)\\n", {n}_error_message(rc), rc); return 1; }}
        for (int i = 0; i < {n.upper()}_NUM_OUTPUTS; i++)
            if (fwrite({n}_output(i), 1, {n}_output_bytes(i), out) != {n}_output_bytes(i)) {{ perror(argv[2]); return 1; }}
    }}
    if (fclose(out)) {{ perror(argv[2]); return 1; }}
    if (argc == 4) {{
        int runs = atoi(argv[3]);
        if (runs < 1) {{ fprintf(stderr, "RUNS must be at least 1\\n"); return 2; }}
        double* t = malloc(sizeof(double) * (size_t)runs);
        if (!t) return 1;
        for (int r = 0; r < runs; r++) {{
            struct timespec a, b;
            clock_gettime(CLOCK_MONOTONIC, &a);
            {n}_invoke();
            clock_gettime(CLOCK_MONOTONIC, &b);
            t[r] = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
        }}
        qsort(t, (size_t)runs, sizeof(double), by_value);
        printf("median %.0f ns per invoke over %d runs\\n", t[runs / 2], runs);
        free(t);
    }}
    free(data);
    return 0;
}}
"""


def makefile(u: Unit) -> str:
    n = u.name
    cross = "  # cross-build: make CC=aarch64-linux-gnu-gcc LDFLAGS=-static" if u.target == "aarch64" else ""
    return f"""# Builds the example program {n}_main from main.c and {n}.c (`make`; CC / CFLAGS may be overridden).{cross}
# -ffp-contract=off keeps float kernels from fusing multiply-adds, so results equal the runtime's bit for bit.
# -O3 as the runtime's own build: the kernels' SIMD bodies are one C body compiled per target and rely on the
# loop vectorizer (GCC 12 at -O2 runs the int8 models 1.5-2x slower, with the same results).
CFLAGS ?= -O3
# -fno-ipa-cp-clone: kernels are compiled once, as in the runtime, not cloned per call for the constant
# parameters (those clones ran the float KWS model 5-10% slower).
EDGEML_CFLAGS = -ffp-contract=off -fno-strict-aliasing -fno-ipa-cp-clone -Iinclude -I.
LDLIBS = -lm

all: {n}_main

{n}_main: main.c {n}.c {n}.h
\t$(CC) $(CFLAGS) $(EDGEML_CFLAGS) -o $@ main.c {n}.c $(LDFLAGS) $(LDLIBS)

{n}.o: {n}.c {n}.h
\t$(CC) $(CFLAGS) $(EDGEML_CFLAGS) -c -o $@ {n}.c

clean:
\trm -f {n}_main {n}.o

.PHONY: all clean
"""
