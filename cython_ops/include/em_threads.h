/* A small persistent worker pool for splitting one big kernel call into slices (num_threads).
 *
 * em_parallel_run(n, fn, ctx) runs fn(ctx, 0) .. fn(ctx, n - 1), each slice once; the caller takes slices too, so
 * the call finishes even when workers are slow to wake (or absent, e.g. after fork).  Slices write disjoint
 * outputs with the same arithmetic as one thread, so results are identical for any thread count.  Workers are
 * created on first use, shared by every interpreter in the process (cython_ops/conv.so holds the pool; the other
 * modules call it: EM_SHARED_POOL_CLIENT), and one parallel region runs at a time. */
#ifndef EM_THREADS_H
#define EM_THREADS_H
#include <stdint.h>

#define EM_MAX_THREADS 64

typedef void (*em_slice_fn)(const void* ctx, int64_t slice, int64_t nslices);

#ifdef EM_NO_THREADS
/* Builds without threads (edgeml compile's C, planned for one thread): the caller runs every slice in order. */
static int em_parallel_run(int64_t nslices, em_slice_fn fn, const void* ctx) {
    for (int64_t s = 0; s < nslices; s++) fn(ctx, s, nslices);
    return 0;
}
#elif defined(EM_SHARED_POOL_CLIENT)
/* A module whose kernels use another module's pool (one pool per process: two pools would each keep a worker
 * spinning, more threads than num_threads asks for).  em_use_shared_pool, called when the module is imported, hands
 * it that module's em_parallel_run (cython_ops/conv.pyx's POOL); without it the caller runs every slice. */
typedef int (*em_parallel_run_fn)(int64_t nslices, em_slice_fn fn, const void* ctx);
static em_parallel_run_fn em_shared_run = NULL;

static void em_use_shared_pool(em_parallel_run_fn run) { em_shared_run = run; }

static int em_parallel_run(int64_t nslices, em_slice_fn fn, const void* ctx) {
    if (nslices > 1 && em_shared_run != NULL) return em_shared_run(nslices, fn, ctx);
    for (int64_t s = 0; s < nslices; s++) fn(ctx, s, nslices);
    return 0;
}
#else
#include <pthread.h>
#include <time.h>

/* Slices are handed out under a spin lock (a few instructions held), never under a sleeping mutex: a thread that
 * blocks on a contended mutex sleeps in the kernel, and waking it (a futex call, on a virtual CPU often an
 * interrupt to a halted core) costs tens of microseconds, as much as a small op.  Threads spin a while (EM_SPIN_NS,
 * half a millisecond, by the clock: a pause instruction takes from a few cycles to over a hundred, by CPU) for the
 * next region or for the last slices before they sleep on a condition variable; `sleepers` and `caller_waits` tell
 * the other side whether a wake-up call is needed (each side stores its flag, then reads the other's variable, all
 * four sequentially consistent atomics, so one of them always sees the other's store). */
#define EM_SPIN_NS 500000

typedef struct {
    pthread_mutex_t lock;       /* guards sleeping and waking only */
    pthread_cond_t wake, done;
    int spin;                   /* guards fn, ctx, nslices, next (finished is atomic) */
    int workers;
    int sleepers;               /* workers asleep (or about to sleep) on `wake` */
    int caller_waits;           /* the caller sleeps (or is about to) on `done` */
    int64_t generation;         /* bumped for each parallel region */
    em_slice_fn fn;
    const void* ctx;
    int64_t nslices, next, finished;
} em_pool_state;

static em_pool_state em_pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER,
                                0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
static pthread_mutex_t em_pool_region = PTHREAD_MUTEX_INITIALIZER;

static inline void em_spin_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

static inline int64_t em_spin_clock_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Spinning: call with spin = 0, 1, 2, ..; pauses once and says whether to go on (the clock is read every 64th). */
static inline int em_spin_on(int64_t spin, int64_t* since) {
    em_spin_pause();
    if (spin & 63) return 1;
    const int64_t now = em_spin_clock_ns();
    if (spin == 0) *since = now;
    return now - *since < EM_SPIN_NS;
}

static inline void em_spin_lock(void) {
    while (__atomic_exchange_n(&em_pool.spin, 1, __ATOMIC_ACQUIRE))
        while (__atomic_load_n(&em_pool.spin, __ATOMIC_RELAXED)) em_spin_pause();
}

static inline void em_spin_unlock(void) { __atomic_store_n(&em_pool.spin, 0, __ATOMIC_RELEASE); }

/* Take and run slices of the current region until none is left.  fn, ctx and nslices are read under the spin lock
 * together with the slice index, so a worker late for one region can only take a slice of the region running now. */
static void em_pool_drain(void) {
    for (;;) {
        em_spin_lock();
        if (em_pool.next >= em_pool.nslices) { em_spin_unlock(); return; }
        const int64_t s = em_pool.next++, n = em_pool.nslices;
        const em_slice_fn fn = em_pool.fn;
        const void* ctx = em_pool.ctx;
        em_spin_unlock();
        fn(ctx, s, n);
        const int64_t finished = __atomic_add_fetch(&em_pool.finished, 1, __ATOMIC_SEQ_CST);
        if (finished == n) {
            if (__atomic_load_n(&em_pool.caller_waits, __ATOMIC_SEQ_CST)) {
                pthread_mutex_lock(&em_pool.lock);
                pthread_cond_signal(&em_pool.done);
                pthread_mutex_unlock(&em_pool.lock);
            }
        }
    }
}

static inline int64_t em_pool_finished(void) { return __atomic_load_n(&em_pool.finished, __ATOMIC_SEQ_CST); }

static void* em_pool_worker(void* arg) {
    int64_t seen = (int64_t)(intptr_t)arg;      /* the generation before the region that started this worker */
    for (;;) {
        int64_t g = __atomic_load_n(&em_pool.generation, __ATOMIC_ACQUIRE);
        int64_t since = 0;
        for (int64_t spin = 0; g == seen && em_spin_on(spin, &since); spin++)
            g = __atomic_load_n(&em_pool.generation, __ATOMIC_ACQUIRE);
        if (g == seen) {
            pthread_mutex_lock(&em_pool.lock);
            __atomic_add_fetch(&em_pool.sleepers, 1, __ATOMIC_SEQ_CST);
            while ((g = __atomic_load_n(&em_pool.generation, __ATOMIC_SEQ_CST)) == seen)
                pthread_cond_wait(&em_pool.wake, &em_pool.lock);
            __atomic_sub_fetch(&em_pool.sleepers, 1, __ATOMIC_SEQ_CST);
            pthread_mutex_unlock(&em_pool.lock);
        }
        seen = g;
        em_pool_drain();
    }
    return NULL;
}

/* A forked child has none of the parent's workers, and a lock held by one of them at the fork stays held: start
 * the pool afresh. */
static void em_pool_after_fork(void) {
    pthread_mutex_init(&em_pool.lock, NULL);
    pthread_cond_init(&em_pool.wake, NULL);
    pthread_cond_init(&em_pool.done, NULL);
    pthread_mutex_init(&em_pool_region, NULL);
    em_pool.spin = 0;
    em_pool.workers = 0;
    em_pool.sleepers = 0;
    em_pool.caller_waits = 0;
    em_pool.fn = NULL;
    em_pool.nslices = em_pool.next = em_pool.finished = 0;
}

/* Runs nslices slices of fn over up to nslices threads (the caller included).  Returns 0, or -1 if no worker
 * could be started (then the caller ran every slice itself). */
static int em_parallel_run(int64_t nslices, em_slice_fn fn, const void* ctx) {
    static int fork_handler = 0;
    if (nslices <= 1) { fn(ctx, 0, 1); return 0; }
    pthread_mutex_lock(&em_pool_region);
    int status = 0;
    if (!fork_handler) fork_handler = pthread_atfork(NULL, NULL, em_pool_after_fork) == 0 ? 1 : -1;
    const int64_t generation = em_pool.generation;      /* (only the region holder writes it) */
    while (em_pool.workers < nslices - 1 && em_pool.workers < EM_MAX_THREADS - 1 && fork_handler > 0) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&t, &attr, em_pool_worker, (void*)(intptr_t)generation);
        pthread_attr_destroy(&attr);
        if (rc != 0) { status = -1; break; }
        em_pool.workers++;
    }
    em_spin_lock();
    em_pool.fn = fn;
    em_pool.ctx = ctx;
    em_pool.nslices = nslices;
    em_pool.next = 0;
    __atomic_store_n(&em_pool.finished, 0, __ATOMIC_SEQ_CST);
    em_spin_unlock();
    __atomic_store_n(&em_pool.generation, generation + 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&em_pool.sleepers, __ATOMIC_SEQ_CST)) {
        pthread_mutex_lock(&em_pool.lock);
        pthread_cond_broadcast(&em_pool.wake);
        pthread_mutex_unlock(&em_pool.lock);
    }
    em_pool_drain();
    /* the workers still run their slices: spin, then sleep */
    int64_t since = 0;
    for (int64_t spin = 0; em_pool_finished() < nslices && em_spin_on(spin, &since); spin++) {}
    if (em_pool_finished() < nslices) {
        pthread_mutex_lock(&em_pool.lock);
        __atomic_store_n(&em_pool.caller_waits, 1, __ATOMIC_SEQ_CST);
        while (em_pool_finished() < nslices) pthread_cond_wait(&em_pool.done, &em_pool.lock);
        __atomic_store_n(&em_pool.caller_waits, 0, __ATOMIC_SEQ_CST);
        pthread_mutex_unlock(&em_pool.lock);
    }
    em_spin_lock();
    em_pool.fn = NULL;
    em_spin_unlock();
    pthread_mutex_unlock(&em_pool_region);
    return status;
}
#endif  /* EM_NO_THREADS */

/* Element-wise work split (ops with no reduction across elements): fn(ctx, begin, end) over [0, total) in up to
 * `threads` contiguous ranges whose bounds are multiples of `align` elements (vector width, so that only the last
 * range has a tail), each at least `min_per_slice` elements (below that a wake-up costs more than it saves).
 * Ranges are disjoint and cover [0, total) once, so the outputs are the same bytes for any thread count. */
typedef void (*em_range_fn)(const void* ctx, int64_t begin, int64_t end, int64_t slice);   /* slice: 0, 1, .. */

typedef struct { em_range_fn fn; const void* ctx; int64_t total, align; } em_range_call;

static inline void em_range_slice(const void* c, int64_t slice, int64_t nslices) {
    const em_range_call* call = (const em_range_call*)c;
    const int64_t units = (call->total + call->align - 1) / call->align;
    int64_t begin = units * slice / nslices * call->align, end = units * (slice + 1) / nslices * call->align;
    if (end > call->total) end = call->total;
    if (begin < end) call->fn(call->ctx, begin, end, slice);
}

static inline int em_parallel_range(int64_t threads, int64_t total, int64_t align, int64_t min_per_slice,
                                    em_range_fn fn, const void* ctx) {
    if (align < 1) align = 1;
    if (min_per_slice < 1) min_per_slice = 1;
    int64_t n = total / min_per_slice;
    if (n > threads) n = threads;
    if (n <= 1) {
        if (total > 0) fn(ctx, 0, total, 0);
        return 0;
    }
    const em_range_call call = {fn, ctx, total, align};
    return em_parallel_run(n, em_range_slice, &call);
}
#endif
