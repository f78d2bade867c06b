"""Large buffers a load makes (the model file's bytes, the packed weights, the arena) on transparent huge pages,
kept for the next load when their interpreter is gone.

Each 4 KiB page a load writes for the first time costs one page fault: about 2.6 us on a KVM guest, 0.5-1 us on
bare metal.  A 4 MB model read and packed touches about 2,000 pages, all of them new in a program's first load.
Later loads find them again only by luck: glibc gives the top of its heap back to the kernel when a large block is
freed there, unless some small allocation happens to sit above it (in a loop of loads of tf2_mobilenet_v2 one
process took 1,960 faults per load, 8.7 ms, another none, 5.3 ms).  Here:
- a mapping advised for transparent huge pages (MADV_HUGEPAGE) takes one fault per 2 MiB (the kernel zeroes the
  huge page in one go: about 0.1 ms against 1.3 ms for 512 small faults on a Zen 4 guest);
- when the last array made from a mapping is gone, the mapping goes to a small cache (at most RETAIN_BYTES) that
  the next load takes it from, its pages still in place: no faults and no zeroing on later loads, whatever the
  heap's state.  release_cached() unmaps them.

Used where the kernel offers huge pages for advised mappings (/sys/kernel/mm/transparent_hugepage/enabled is
"always" or "madvise") with a huge page of at most 4 MiB (a 64 KiB-page arm64 kernel's 512 MiB pages would waste
memory); elsewhere, and for buffers under half a huge page, the callers use the heap as before.
EDGEML_HUGEPAGES=0 turns it off.  The bytes handed out are not zeroed (np.empty's contract)."""
from __future__ import annotations

import mmap
import os
import weakref
from functools import lru_cache

import numpy as np

SMALL_PAGE = mmap.PAGESIZE
MAX_HUGE_PAGE = 4 << 20
MIN_BYTES = 1 << 20             # smaller buffers stay on the heap (half of the smallest huge page used, 2 MiB)
RETAIN_BYTES = 64 << 20         # freed mappings kept for the next load, at most (the oldest unmapped first)
_CACHE = []                     # freed mappings, oldest first
_LIVE = {}                      # id -> (mapping, the weak reference whose callback hands it back)


def _read_setting(name: str) -> str:
    """A transparent huge page setting of the kernel's (os.open / os.read: a third of open()'s cost)."""
    fd = os.open("/sys/kernel/mm/transparent_hugepage/" + name, os.O_RDONLY)
    try:
        return os.read(fd, 256).decode("ascii", "replace").strip()
    finally:
        os.close(fd)


@lru_cache(maxsize=1)
def huge_page_bytes() -> int:
    """The transparent huge page size an advised anonymous mapping gets here, or 0 (none, or turned off)."""
    if os.environ.get("EDGEML_HUGEPAGES", "1") == "0":
        return 0
    if not all(hasattr(mmap, n) for n in ("MAP_PRIVATE", "MAP_ANONYMOUS", "MADV_HUGEPAGE", "MADV_DONTNEED")):
        return 0
    try:
        mode, size = (_read_setting(name) for name in ("enabled", "hpage_pmd_size"))
        size = int(size)
    except (OSError, ValueError):
        return 0
    if "[never]" in mode or not 2 * MIN_BYTES <= size <= MAX_HUGE_PAGE or size & (size - 1):
        return 0
    return size


class Mapping:
    """An anonymous mapping advised for huge pages; its `capacity` usable bytes start at `start`, a huge-page
    boundary."""
    __slots__ = ("map", "start", "capacity", "used", "__weakref__")

    def __init__(self, size: int, huge: int):
        # the kernel backs an advised range with a huge page only where a whole aligned huge page lies inside the
        # mapping: room for the alignment shift, and a last partial huge page rounded up to a whole one when it is
        # at least half full (less than half: small pages for it, no more than half a huge page left unused)
        tail = size % huge
        self.capacity = size - tail + huge if tail >= huge // 2 else size
        self.map = mmap.mmap(-1, self.capacity + huge - SMALL_PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self.map.madvise(mmap.MADV_HUGEPAGE)
        first = np.frombuffer(self.map, np.uint8, count=1)
        self.start = -first.ctypes.data % huge
        self.used = False           # handed out before (its bytes are no longer the kernel's zeros)

    def release_after(self, used: int):
        """Gives the pages wholly past the first `used` usable bytes back to the kernel (a huge page only begun
        is split; its unused small pages are freed)."""
        begin = -(-(self.start + used) // SMALL_PAGE) * SMALL_PAGE
        end = len(self.map)
        if begin < end:
            self.map.madvise(mmap.MADV_DONTNEED, begin, end - begin)


def _handed_back(key: int):
    """The weak reference's callback: the array made from a mapping, and every view of it, are gone.  It takes no
    lock (it may run inside the cyclic collector, at any allocation of any thread, even one in _acquire): the cache
    is a list whose appends, pops and removes are each atomic, the budget kept approximately under races."""
    entry = _LIVE.pop(key, None)
    if entry is None:
        return
    _CACHE.append(entry[0])
    total = sum(m.capacity for m in list(_CACHE))
    while total > RETAIN_BYTES:       # (a dropped mapping is unmapped when its last export goes)
        try:
            total -= _CACHE.pop(0).capacity
        except IndexError:
            break


def _acquire(size: int, huge: int):
    """(mapping, array of its first `size` usable bytes): a cached mapping large enough (the smallest such, taken
    out of the cache by one atomic remove: another thread may have taken it first), else a new one; None if the
    kernel refuses the mapping."""
    mapping = None
    for _ in range(4):
        fits = [m for m in list(_CACHE) if m.capacity >= size]
        if not fits:
            break
        best = min(fits, key=lambda m: m.capacity)
        try:
            _CACHE.remove(best)
        except ValueError:
            continue
        mapping = best
        break
    if mapping is None:
        try:
            mapping = Mapping(size, huge)
        except (OSError, ValueError):
            return None
    array = np.frombuffer(mapping.map, np.uint8, count=mapping.capacity, offset=mapping.start)
    key = id(array)
    _LIVE[key] = (mapping, weakref.ref(array, lambda _, key=key: _handed_back(key)))
    return mapping, array


def release_cached():
    """Unmaps the cached mappings (those of interpreters already gone)."""
    del _CACHE[:]


def large_bytes(n: int, zeroed: bool = False):
    """n writable bytes on huge pages (a uint8 array; zeroed if asked, else as a reused mapping left them), or None
    where a heap block is the better home (no huge pages here, fewer than half a huge page's bytes, or the mapping
    refused)."""
    if n < MIN_BYTES:       # (before the kernel's settings are read: a small model's load never reads them)
        return None
    huge = huge_page_bytes()
    if not huge or n < huge // 2:
        return None
    got = _acquire(n, huge)
    if got is None:
        return None
    mapping, array = got
    if zeroed and mapping.used:
        array[:n] = 0
    mapping.used = True
    return array[:n]


class Region:
    """A bump allocator over huge-page mappings for the arrays a load keeps (Ctx.keep_new): the first mapping
    sized by an estimate of the bytes to come, each further one at least as large; release() gives back the pages
    the load did not use."""
    __slots__ = ("huge", "next_size", "mapping", "array", "used")

    def __init__(self, estimate: int, huge: int):
        self.huge = huge
        self.next_size = max(-(-2 * estimate // huge) * huge, huge)
        self.mapping = self.array = None
        self.used = 0

    def take(self, nbytes: int, align: int):
        """(the mapping's array, offset) of nbytes at an `align`-byte boundary, or None (the kernel refused a
        new mapping: the caller takes a heap block)."""
        at = -(-self.used // align) * align
        if self.array is None or at + nbytes > len(self.array):
            size = max(self.next_size, -(-nbytes // self.huge) * self.huge)
            got = _acquire(size, self.huge)
            if got is None:
                return None
            self.release()          # (the previous mapping's tail was never written)
            (self.mapping, self.array), self.next_size, at = got, size, 0
            self.mapping.used = True
        self.used = at + nbytes
        return self.array, at

    def release(self):
        """The untouched pages of the current mapping back to the kernel (after the load, or when it is full)."""
        if self.mapping is not None:
            self.mapping.release_after(self.used)


def region_for(estimate: int):
    """A Region for a load expected to keep about `estimate` bytes, or None (heap blocks: huge pages unavailable
    or the load too small for them)."""
    if estimate < MIN_BYTES:
        return None
    huge = huge_page_bytes()
    if not huge or estimate < huge // 2:
        return None
    return Region(estimate, huge)
