"""The worker pool the int8 kernels split over (cython_ops/include/em_threads.h): one pool per process, shared by
every kernel module; regions back to back, from several Python threads at once, and after a fork, all giving the
single-thread bytes.  Each case runs in a fresh interpreter process (its thread count is what is checked, and a
deadlock must end in a timeout, not a hung test run)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "tests" / "models" / "mlperf_tiny"


def run_script(code: str, timeout: float = 240) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


PRELUDE = f'''
import os, numpy as np, edgeml
MODEL = {str(MODELS / "vww_96_int8.tflite")!r}
def tasks():
    return len(os.listdir("/proc/self/task"))
def inputs(n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(-128, 128, (1, 96, 96, 3)).astype(np.int8) for _ in range(n)]
'''


def threaded_kernels(it):
    return {s.kernel for s in it.plan.steps if s.make(lambda t: 0)[1].get("threads", 1) > 1}


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc/self/task")
@pytest.mark.parametrize("threads", [2, 3])
def test_dense_and_sparse_kernels_share_one_pool(threads):
    """VWW's pruned convs run on the block-sparse kernels (cython_ops/sparse.so), its others on conv.so; both split
    over threads, through one pool: num_threads - 1 workers in all (two pools kept two workers spinning, three
    threads on a two-core machine, and two threads ran slower than one)."""
    import edgeml
    it = edgeml.Interpreter(str(MODELS / "vww_96_int8.tflite"), num_threads=threads)
    kernels = threaded_kernels(it)
    if not any("sparse" in k for k in kernels) or not any("sparse" not in k for k in kernels):
        pytest.skip(f"this ISA path splits no sparse and dense kernels both ({sorted(kernels)})")
    out = run_script(PRELUDE + f'''
one = edgeml.Interpreter(MODEL, num_threads=1)
many = edgeml.Interpreter(MODEL, num_threads={threads})
xs = inputs(20)
want = [one.run(x) for x in xs]
before = tasks()
for _ in range(3):
    for x, w in zip(xs, want):
        assert np.array_equal(many.run(x), w)
print("workers", tasks() - before)
''')
    assert f"workers {threads - 1}" in out, out


def test_python_threads_take_turns_on_the_pool():
    """Four Python threads, each with its own 2-thread interpreter (regions from several callers at once take
    turns), every output the single-thread bytes."""
    run_script(PRELUDE + '''
import threading
one = edgeml.Interpreter(MODEL, num_threads=1)
xs = inputs(12, seed=1)
want = [one.run(x) for x in xs]
bad = []
def work(k):
    it = edgeml.Interpreter(MODEL, num_threads=2)
    for r in range(15):
        for x, w in zip(xs, want):
            if not np.array_equal(it.run(x), w):
                bad.append(k)
ts = [threading.Thread(target=work, args=(k,)) for k in range(4)]
for t in ts: t.start()
for t in ts: t.join()
assert not bad, bad
''')


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_runs_threaded_models():
    """A child forked after the parent's pool started has none of its workers (and none of the locks they held):
    the pool starts afresh there, and the child's threaded runs give the same bytes (before, the child's caller ran
    every slice itself, and a lock held at the fork would have hung it)."""
    run_script(PRELUDE + '''
import warnings
warnings.simplefilter("ignore", DeprecationWarning)     # (fork with threads running: the point of the test)
one = edgeml.Interpreter(MODEL, num_threads=1)
many = edgeml.Interpreter(MODEL, num_threads=2)
xs = inputs(6, seed=2)
want = [one.run(x) for x in xs]
for x in xs:
    many.run(x)
for child in range(3):
    pid = os.fork()
    if pid == 0:
        ok = True
        try:
            before = tasks()
            for _ in range(5):
                ok = ok and all(np.array_equal(many.run(x), w) for x, w in zip(xs, want))
            ok = ok and tasks() == before + 1       # the child's own worker
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, f"child {child}: exit {status}"
    assert all(np.array_equal(many.run(x), w) for x, w in zip(xs, want))
''', timeout=240)


POOL_STRESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include "em_threads.h"

/* Regions of 1..7 slices back to back, from two caller threads at once, some after a pause long enough for the
 * workers to sleep: every slice of every region runs once, and its writes are seen by the caller on return. */
typedef struct { int64_t* hits; int64_t region; } job;

static void slice_fn(const void* ctx, int64_t s, int64_t n) {
    const job* j = (const job*)ctx;
    (void)n;
    j->hits[s] += j->region + 1;
}

static void* caller(void* arg) {
    const int64_t me = (int64_t)(intptr_t)arg;
    int64_t hits[8];
    for (int64_t r = 0; r < 4000; r++) {
        const int64_t n = 1 + (r * 7 + me * 3) % 7;
        for (int k = 0; k < 8; k++) hits[k] = 0;
        const job j = {hits, r};
        em_parallel_run(n, slice_fn, &j);
        for (int64_t k = 0; k < 8; k++)
            if (hits[k] != (k < n ? r + 1 : 0)) {
                printf("caller %lld region %lld slice %lld: %lld\n", (long long)me, (long long)r, (long long)k,
                       (long long)hits[k]);
                exit(1);
            }
        if (r % 1000 == 999) {      /* past the spin: the workers sleep, the next region wakes them */
            struct timespec t = {0, 3000000};
            nanosleep(&t, NULL);
        }
    }
    return NULL;
}

int main(void) {
    pthread_t t[2];
    for (int k = 0; k < 2; k++) pthread_create(&t[k], NULL, caller, (void*)(intptr_t)k);
    for (int k = 0; k < 2; k++) pthread_join(t[k], NULL);
    printf("ok\n");
    return 0;
}
"""


@pytest.mark.parametrize("sanitizer", [None, "thread"])
def test_pool_runs_every_slice_once(tmp_path, sanitizer):
    """em_threads.h alone, compiled as C: thousands of regions from two callers, some after the workers went to
    sleep; with ThreadSanitizer too, where the compiler has it (a data race in the hand-off is an error there)."""
    import shutil
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler")
    src, exe = tmp_path / "pool.c", tmp_path / "pool"
    src.write_text(POOL_STRESS)
    flags = ["-O1", "-g", "-Wall", "-Werror"] + ([f"-fsanitize={sanitizer}"] if sanitizer else [])
    built = subprocess.run([cc, *flags, "-I", str(ROOT / "cython_ops" / "include"), str(src), "-o", str(exe),
                            "-pthread"], capture_output=True, text=True)
    if built.returncode != 0 and sanitizer:
        pytest.skip(f"{cc} cannot build with -fsanitize={sanitizer}: {built.stderr[-300:]}")
    assert built.returncode == 0, built.stderr
    env = dict(os.environ, TSAN_OPTIONS="halt_on_error=1 exitcode=66")
    env.pop("LD_PRELOAD", None)     # (a suite run under an AddressSanitizer preload: TSan cannot start beside it)
    done = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0 and done.stdout.strip() == "ok", (done.stdout + done.stderr)[-4000:]
