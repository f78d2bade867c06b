"""The kernels' named parameter layouts: edgeml/runtime/layouts.py against the C enums of cython_ops/include.

One C program includes every header that defines a layout and prints every EM_<PREFIX>_{P,I,F}_<NAME> constant
the mirror lists (the _LAST of each run and the _COUNTs too); each must equal the slot's position in the mirror.
Every layout constant the headers define must be in the mirror, every kernel of every cython_ops module's KERNELS
must have a layout (and only those), and no kernel may read a slot by number any more.  Needs the C compiler the
package build needs (cc); fails, never skips, without it."""
import importlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from edgeml.runtime import layouts as LY

ROOT = Path(__file__).resolve().parents[1]
INCLUDE = ROOT / "cython_ops" / "include"
MODULES = ["activation", "control", "conv", "detection", "elementwise", "float_ops", "index", "int16x8", "math_ops",
           "onnx_float_ops", "onnx_ops", "pool", "reduce", "rnn", "shape", "space_ops", "svdf", "transpose_conv"]
MODULES += ["sparse"]      # issue 20: block-sparse int8 kernels
LETTER = {"ptrs": "P", "ints": "I", "floats": "F"}
LIMITS = {"ptrs": "EM_MAX_PTRS", "ints": "EM_MAX_INTS", "floats": "EM_MAX_FLOATS"}


def expected_constants() -> dict:
    """C name -> value implied by the mirror; an inherited name must mean the same slot in every layout."""
    expect = {}

    def put(name, value, where):
        if expect.get(name, value) != value:
            raise AssertionError(f"{where}: {name} is {value} here but {expect[name]} in another layout")
        expect[name] = value

    for layout in LY.LAYOUTS:
        for kind, slots, _ in layout.sections():
            pos = 0
            for s in slots:
                put(f"{s.prefix}_{LETTER[kind]}_{s.name.upper()}", pos, layout.name)
                if s.length > 1:
                    put(f"{s.prefix}_{LETTER[kind]}_{s.name.upper()}_LAST", pos + s.length - 1, layout.name)
                pos += s.length
            put(f"{layout.prefix}_{LETTER[kind]}_COUNT", pos, layout.name)
    return expect


@pytest.fixture(scope="module")
def c_values(tmp_path_factory) -> dict:
    cc = shutil.which("cc")
    assert cc is not None, "no C compiler (cc) on PATH: the package build needs one too"
    names = sorted(expected_constants()) + list(LIMITS.values())
    headers = sorted({layout.header for layout in LY.LAYOUTS})
    src = "#include <stdio.h>\n" + "".join(f'#include "{h}"\n' for h in ["em_params.h"] + headers)
    src += "int main(void) {\n" + "".join(f'    printf("{n} %ld\\n", (long){n});\n' for n in names) + \
        "    return 0;\n}\n"
    tmp = tmp_path_factory.mktemp("layouts")
    (tmp / "layouts.c").write_text(src)
    exe = tmp / "layouts"
    done = subprocess.run([cc, "-O0", "-w", f"-I{INCLUDE}", str(tmp / "layouts.c"), "-o", str(exe), "-lm",
                           "-lpthread"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, "the layout constants do not compile:\n" + done.stderr[-4000:]
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return {name: int(value) for name, value in (line.split() for line in run.stdout.splitlines())}


def test_every_slot_index_in_the_mirror_equals_the_c_enum(c_values):
    wrong = [f"{name}: C {c_values[name]}, mirror {value}" for name, value in expected_constants().items()
             if c_values[name] != value]
    assert not wrong, "\n".join(wrong)


def test_counts_fit_em_params(c_values):
    for layout in LY.LAYOUTS:
        for kind, _, _ in layout.sections():
            count = c_values[f"{layout.prefix}_{LETTER[kind]}_COUNT"]
            assert count == layout.count(kind)
            assert count <= c_values[LIMITS[kind]], f"{layout.prefix}: {count} {kind} > {LIMITS[kind]}"


def test_each_layout_is_defined_in_its_header():
    for layout in LY.LAYOUTS:
        text = (INCLUDE / layout.header).read_text()
        for kind in LETTER.values():
            assert re.search(rf"\b{layout.prefix}_{kind}_COUNT\b", text), \
                f"{layout.prefix}_{kind}_COUNT is not defined in {layout.header}"


def _enum_members(text: str) -> list:
    members = []
    for body in re.findall(r"\benum\s*\{(.*?)\}", re.sub(r"/\*.*?\*/", "", text, flags=re.S), flags=re.S):
        members += [m.split("=")[0].strip() for m in body.split(",") if m.strip()]
    return members


def test_every_layout_constant_of_the_headers_is_in_the_mirror():
    expect = expected_constants()
    unknown = []
    for header in sorted(INCLUDE.glob("*.h")):
        for name in _enum_members(header.read_text()):
            if re.match(r"^EM_\w+_[PIF]_\w+$", name) and name not in expect:
                unknown.append(f"{header.name}: {name}")
    assert not unknown, "layout constants missing from edgeml/runtime/layouts.py:\n" + "\n".join(unknown)


def test_kernel_tables_and_mirror_name_the_same_kernels():
    kernels = {}
    for module in MODULES:
        for name in importlib.import_module(f"cython_ops.{module}").KERNELS:
            assert name not in kernels, f"{name} is in both cython_ops.{kernels[name]} and cython_ops.{module}"
            kernels[name] = module
    assert sorted(set(kernels) - set(LY.KERNEL_LAYOUTS)) == [], "kernels without a layout"
    assert sorted(set(LY.KERNEL_LAYOUTS) - set(kernels)) == [], "layouts of kernels no KERNELS table has"
    assert set(LY.KERNEL_LAYOUTS.values()) == set(LY.LAYOUTS), "a layout no kernel uses, or one not in LAYOUTS"


NUMBERED = re.compile(r"p->(i|ptr|f)\s*\[\s*\d|\bd\s*\[\s*\d|p->(i|ptr|f)\s*\+\s*\d")


def test_no_kernel_reads_a_slot_by_number():
    hits = []
    for header in sorted(INCLUDE.glob("*.h")):
        for k, line in enumerate(header.read_text().splitlines(), 1):
            if NUMBERED.search(line):
                hits.append(f"{header.name}:{k}: {line.strip()}")
    assert not hits, "slots read by number:\n" + "\n".join(hits)


# ----- the builders --------------------------------------------------------------------------------------------

def test_builders_put_each_value_at_its_slot():
    L = LY.layout_of("lstm_f32")
    ptrs = L.ptrs(x=1, y=2, h_state=3, c_state=4, wx=5, wh=6, bias=7, scratch=8)
    assert ptrs == [1, 2, 3, 4, 5, 6, 7, 0, 0, 0, 0, 0, 0, 8]          # the reserved run is 0
    assert L.ints(batch=1, steps=2, inputs=3, cells=4, time_major=0, activation=4, interleaved=1) == \
        [1, 2, 3, 4, 0, 4, 1]
    assert L.floats(cell_clip=0.5) == [0.5]
    R = LY.layout_of("onnx_rnn_f32")
    ints = R.ints(cell=0, steps=5, batch=1, inputs=3, hidden=8, directions=1, reverse=0, layout=0, input_forget=0,
                  linear_before_reset=0, quads=0, activations=[0, 1, 1, 0, 0, 0], fused_step=1)
    assert len(ints) == R.count("ints") and ints[R.index("ints", "fused_step")] == 1
    assert LY.layout_of("conv2d_int8_vnni").index("ints", "kp") == LY.CONV.index("ints", "chunk") + 1
    assert LY.layout_of("fully_connected_f32").ints(rows=2, depth=3, units=4) == [2, 3, 4]


def test_builders_name_the_slot_that_is_wrong():
    L = LY.layout_of("fully_connected_f32")
    with pytest.raises(ValueError, match="'bias' is missing"):
        L.ptrs(input=1, weights=2, output=4)
    with pytest.raises(ValueError, match="no ptrs slot 'scratch'"):
        L.ptrs(input=1, weights=2, bias=3, output=4, scratch=5)
    with pytest.raises(ValueError, match="run 'tables' takes 3 values, got 2"):
        LY.layout_of("lstm_int8").ptrs(x=0, y=0, h_state=0, c_state=0, wx=0, wh=0, bias_x=0, bias_h=0, mult=0,
                                       shift=0, tables=[1, 2], scratch=0)
    with pytest.raises(ValueError, match="'rows' takes one value"):
        L.ints(rows=[1, 2], depth=3, units=4)
    with pytest.raises(ValueError, match="no ptrs slot 'reserved'"):
        LY.layout_of("lstm_f32").ptrs(x=0, y=0, h_state=0, c_state=0, wx=0, wh=0, bias=0, scratch=0,
                                      reserved=[0] * 6)
    with pytest.raises(ValueError, match="no kernel 'conv3d'"):
        LY.layout_of("conv3d")
