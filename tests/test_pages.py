"""Large load-time buffers on huge-page mappings kept for the next load (edgeml/pages.py): alignment, the bump
allocator, hand-back and reuse, the heap fallbacks, and loads whose kept arrays lie in the mappings giving the
same results as loads on the heap."""
from __future__ import annotations

import gc
import mmap
import resource

import numpy as np
import pytest

import edgeml
from edgeml import pages
from edgeml.runtime import plan as plan_module

MODELS = "tests/models/mlperf_tiny/"
SMALL_HUGE = 1 << 16       # a stand-in huge page size, so that the repository's small models use the mappings


def minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


@pytest.fixture
def cache():
    """An empty mapping cache, emptied again afterwards."""
    gc.collect()
    pages.release_cached()
    yield pages._CACHE
    gc.collect()
    pages.release_cached()


def use_huge_pages(monkeypatch, size: int):
    """Loads take mappings with huge pages of `size` bytes from half a page on (0: none)."""
    monkeypatch.setattr(pages, "huge_page_bytes", lambda: size)
    monkeypatch.setattr(pages, "MIN_BYTES", size // 2)


@pytest.fixture
def small_huge(monkeypatch, cache):
    use_huge_pages(monkeypatch, SMALL_HUGE)
    return SMALL_HUGE


def test_the_switch_and_the_kernel_setting_decide_the_huge_page_size(monkeypatch):
    pages.huge_page_bytes.cache_clear()
    try:
        monkeypatch.setenv("EDGEML_HUGEPAGES", "0")
        assert pages.huge_page_bytes() == 0
        assert pages.large_bytes(64 << 20) is None and pages.region_for(64 << 20) is None
        pages.huge_page_bytes.cache_clear()
        monkeypatch.delenv("EDGEML_HUGEPAGES")
        size = pages.huge_page_bytes()
        try:
            with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
                offered = "[never]" not in f.read()
        except OSError:
            offered = False
        assert size == 0 or (offered and 2 * pages.MIN_BYTES <= size <= pages.MAX_HUGE_PAGE and
                             size & (size - 1) == 0)
    finally:
        pages.huge_page_bytes.cache_clear()


def test_small_buffers_stay_on_the_heap_without_reading_the_settings(small_huge, monkeypatch):
    def unread():
        raise AssertionError("the kernel's settings were read for a small buffer")
    monkeypatch.setattr(pages, "huge_page_bytes", unread)
    assert pages.large_bytes(small_huge // 2 - 1) is None
    assert pages.region_for(small_huge // 2 - 1) is None
    monkeypatch.setattr(pages, "huge_page_bytes", lambda: small_huge)
    assert pages.large_bytes(small_huge // 2 - 1) is None
    assert pages.region_for(small_huge // 2 - 1) is None
    assert pages.large_bytes(small_huge // 2) is not None


@pytest.mark.parametrize("n", [SMALL_HUGE // 2, SMALL_HUGE - 1, SMALL_HUGE + 100, 3 * SMALL_HUGE + SMALL_HUGE // 2])
def test_large_bytes_start_on_a_huge_page_and_are_writable(small_huge, n):
    a = pages.large_bytes(n)
    assert a.dtype == np.uint8 and a.shape == (n,) and a.flags.writeable
    assert a.ctypes.data % small_huge == 0
    a[:] = 7
    assert int(a.sum()) == 7 * n


def test_a_mapping_rounds_a_mostly_full_last_huge_page_up():
    m = pages.Mapping(2 * SMALL_HUGE + SMALL_HUGE // 2, SMALL_HUGE)
    assert m.capacity == 3 * SMALL_HUGE
    m = pages.Mapping(2 * SMALL_HUGE + SMALL_HUGE // 2 - 1, SMALL_HUGE)
    assert m.capacity == 2 * SMALL_HUGE + SMALL_HUGE // 2 - 1
    assert len(m.map) >= m.start + m.capacity and m.start % mmap.PAGESIZE == 0


def test_a_freed_buffer_is_reused_by_the_next_without_faults(small_huge, cache):
    n = 8 * small_huge
    a = pages.large_bytes(n)
    a[:] = 1
    address = a.ctypes.data
    del a
    assert len(cache) == 1          # handed back when its last array went
    b = pages.large_bytes(n - 1000)
    assert b.ctypes.data == address and not cache
    f0 = minor_faults()
    b[:] = 2
    assert minor_faults() - f0 <= 2       # its pages are in place (a fresh mapping would fault on each)


def test_a_view_keeps_its_mapping_out_of_the_cache(small_huge, cache):
    a = pages.large_bytes(4 * small_huge)
    view = a[100:200].view(np.int32)
    del a
    assert not cache
    view[:] = 5
    del view
    assert len(cache) == 1


def test_the_cache_keeps_at_most_retain_bytes(small_huge, cache, monkeypatch):
    monkeypatch.setattr(pages, "RETAIN_BYTES", 3 * small_huge)
    held = [pages.large_bytes(small_huge) for _ in range(5)]
    del held
    assert sum(m.capacity for m in cache) <= 3 * small_huge and len(cache) == 3


def test_the_smallest_cached_mapping_that_fits_is_taken(small_huge, cache):
    big, small = pages.large_bytes(8 * small_huge), pages.large_bytes(2 * small_huge)
    big_at, small_at = big.ctypes.data, small.ctypes.data
    del big, small
    assert pages.large_bytes(small_huge).ctypes.data == small_at
    assert pages.large_bytes(3 * small_huge).ctypes.data == big_at


def test_the_region_aligns_grows_and_keeps_what_it_gave(small_huge):
    region = pages.region_for(small_huge)
    given = []
    for k, size in enumerate([100, 5000, 3 * small_huge, 64, 5 * small_huge, 1]):
        array, at = region.take(size, 64)
        assert at % 64 == 0 and array.ctypes.data % small_huge == 0 and at + size <= len(array)
        block = np.ndarray((size,), np.uint8, array, at)
        block[:] = k + 1
        given.append(block)
    region.release()
    for k, block in enumerate(given):
        assert (block == k + 1).all()


def test_a_refused_mapping_falls_back_to_the_heap(small_huge, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError(12, "Cannot allocate memory")
    monkeypatch.setattr(pages.mmap, "mmap", refuse)
    assert pages.large_bytes(4 * small_huge) is None
    assert pages.region_for(4 * small_huge).take(100, 64) is None
    interpreter = edgeml.Interpreter(MODELS + "kws_ref_model.tflite")       # (kept arrays on the heap)
    interpreter.run(np.zeros(interpreter.get_input_details()[0]["shape"], np.int8))


def on_mapping(a: np.ndarray) -> bool:
    """Whether array `a` lies in an anonymous mapping (its chain of bases ends at a view of an mmap)."""
    base = a
    while isinstance(base, np.ndarray) and base.base is not None:
        base = base.base
    return isinstance(base, memoryview) and isinstance(base.obj, mmap.mmap)


def kept_in_mappings(interpreter) -> float:
    """The share of the plan's kept bytes whose array lies in a huge-page mapping."""
    kept = [a for a in interpreter.plan.keep if isinstance(a, np.ndarray) and a.nbytes]
    return sum(a.nbytes for a in kept if on_mapping(a)) / sum(a.nbytes for a in kept)


@pytest.mark.parametrize("name", ["kws_ref_model.tflite", "vww_96_int8.tflite", "pretrainedResnet_quant.tflite",
                                  "ad01_fp32.tflite", "kws_ref_model.onnx"])
def test_loads_on_mappings_match_loads_on_the_heap(name, monkeypatch, cache):
    path = (MODELS if name.endswith(".tflite") else "tests/models/mlperf_tiny_onnx/") + name
    use_huge_pages(monkeypatch, 0)         # no mappings
    heap = edgeml.Interpreter(path)
    assert kept_in_mappings(heap) == 0
    detail = heap.get_input_details()[0]
    rng = np.random.default_rng(5)
    if np.dtype(detail["dtype"]) == np.int8:
        x = rng.integers(-128, 128, size=detail["shape"], dtype=np.int8)
    else:
        x = rng.standard_normal(detail["shape"]).astype(detail["dtype"])
    want = [o.copy() for o in heap.run(x)]
    use_huge_pages(monkeypatch, 1 << 12)       # every load on mappings
    for _ in range(2):        # a fresh mapping, then the one the first load handed back
        mapped = edgeml.Interpreter(path)
        assert kept_in_mappings(mapped) == 1.0
        assert mapped.shared_weight_bytes == heap.shared_weight_bytes
        got = mapped.run(x)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)
        del mapped, got
        gc.collect()
    assert cache


def test_a_repeated_large_load_reuses_its_mappings(monkeypatch, cache):
    use_huge_pages(monkeypatch, SMALL_HUGE)
    path = MODELS + "vww_96_int8.tflite"
    first = edgeml.Interpreter(path)
    addresses = {a.ctypes.data for a in first.plan.keep if isinstance(a, np.ndarray)}
    del first
    gc.collect()
    assert cache
    second = edgeml.Interpreter(path)
    again = {a.ctypes.data for a in second.plan.keep if isinstance(a, np.ndarray)}
    assert len(addresses & again) >= 0.9 * len(again)       # the same mapping, the same bump offsets


def test_the_file_buffer_of_a_large_model_is_a_mapping(small_huge):
    from converters.source import read_model_buffer
    view, held = read_model_buffer(MODELS + "vww_96_int8.tflite")
    assert on_mapping(held)
    with open(MODELS + "vww_96_int8.tflite", "rb") as f:
        assert bytes(view) == f.read()


def test_the_plan_module_takes_the_region_from_the_constants(small_huge):
    graph = edgeml.Interpreter(MODELS + "ad01_int8.tflite").graph
    ctx = plan_module.Ctx(graph, 0)
    assert isinstance(ctx.pages, pages.Region)
    assert ctx.pages.next_size >= sum(t.data.nbytes for t in graph.tensors if t.data is not None)


def test_a_large_arena_lies_on_a_mapping_and_starts_zeroed_when_reused(small_huge, cache):
    path = MODELS + "vww_96_int8.tflite"
    first = edgeml.Interpreter(path)
    arena = first.plan.arena
    assert arena.nbytes >= small_huge // 2
    assert on_mapping(arena)
    first.run(np.full(first.get_input_details()[0]["shape"], 77, np.int8))
    assert arena.any()
    address = arena.ctypes.data
    del first, arena
    gc.collect()
    second = edgeml.Interpreter(path)
    assert second.plan.arena.ctypes.data == address       # the same mapping, zeroed again
    assert not second.plan.arena.any()


def test_large_bytes_zeroes_a_reused_mapping_only_when_asked(small_huge, cache):
    a = pages.large_bytes(4 * small_huge)
    a[:] = 9
    del a
    b = pages.large_bytes(4 * small_huge)
    assert (b == 9).all()       # (np.empty's contract: the file reader overwrites it)
    del b
    assert not pages.large_bytes(4 * small_huge, zeroed=True).any()


def test_a_small_model_loads_without_reading_the_settings():
    pages.huge_page_bytes.cache_clear()
    try:
        interpreter = edgeml.Interpreter(MODELS + "kws_ref_model.tflite")
        interpreter.run(np.zeros(interpreter.get_input_details()[0]["shape"], np.int8))
        assert pages.huge_page_bytes.cache_info().misses == 0
    finally:
        pages.huge_page_bytes.cache_clear()


def test_a_mapping_in_a_reference_cycle_comes_back_through_the_collector(small_huge, cache):
    class Holder:
        pass
    h = Holder()
    h.array, h.me = pages.large_bytes(4 * small_huge), h
    address = h.array.ctypes.data
    del h
    gc.collect()
    assert len(cache) == 1
    assert pages.large_bytes(3 * small_huge).ctypes.data == address


def test_threads_taking_and_dropping_mappings_share_the_cache(small_huge, cache, monkeypatch):
    import threading
    monkeypatch.setattr(pages, "RETAIN_BYTES", 8 * small_huge)
    errors = []

    def work(seed):
        rng = np.random.default_rng(seed)
        try:
            for _ in range(300):
                a = pages.large_bytes(int(rng.integers(small_huge // 2, 3 * small_huge)))
                a[::4096] = seed
                assert (a[::4096] == seed).all()        # (no other thread writes a mapping handed out here)
                if rng.random() < 0.01:
                    gc.collect()
        except Exception as exc:        # noqa: BLE001 (reported below)
            errors.append(exc)
    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    gc.collect()
    assert sum(m.capacity for m in cache) <= 8 * small_huge + 3 * small_huge
