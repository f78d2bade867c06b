/* A small persistent worker pool for splitting one big kernel call into slices (num_threads).
 *
 * em_parallel_run(n, fn, ctx) runs fn(ctx, 0) .. fn(ctx, n - 1), each slice once; the caller takes slices too, so
 * the call finishes even when workers are slow to wake (or absent, e.g. after fork).  Slices write disjoint
 * outputs with the same arithmetic as one thread, so results are identical for any thread count.  Workers are
 * created on first use, shared by every interpreter in the process, and one parallel region runs at a time. */
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
#else
#include <pthread.h>

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    int workers;
    int64_t generation;      /* bumped for each parallel region */
    em_slice_fn fn;
    const void* ctx;
    int64_t nslices, next, finished;
} em_pool_state;

static em_pool_state em_pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER,
                                0, 0, 0, 0, 0, 0, 0};
static pthread_mutex_t em_pool_region = PTHREAD_MUTEX_INITIALIZER;

/* Take and run slices until none is left; called with the lock held, returns with it held. */
static void em_pool_drain(void) {
    while (em_pool.next < em_pool.nslices) {
        int64_t s = em_pool.next++;
        em_slice_fn fn = em_pool.fn;
        const void* ctx = em_pool.ctx;
        int64_t n = em_pool.nslices;
        pthread_mutex_unlock(&em_pool.lock);
        fn(ctx, s, n);
        pthread_mutex_lock(&em_pool.lock);
        if (++em_pool.finished == em_pool.nslices) pthread_cond_signal(&em_pool.done);
    }
}

static void* em_pool_worker(void* unused) {
    (void)unused;
    pthread_mutex_lock(&em_pool.lock);
    int64_t seen = em_pool.generation;
    for (;;) {
        while (em_pool.generation == seen) {
            /* spin briefly without the lock before sleeping: regions often come in quick succession */
            pthread_mutex_unlock(&em_pool.lock);
            for (int spin = 0; spin < 20000 && __atomic_load_n(&em_pool.generation, __ATOMIC_ACQUIRE) == seen; spin++) {
#if defined(__x86_64__) || defined(__i386__)
                __builtin_ia32_pause();
#elif defined(__aarch64__)
                __asm__ volatile("yield");
#endif
            }
            pthread_mutex_lock(&em_pool.lock);
            if (em_pool.generation == seen) pthread_cond_wait(&em_pool.wake, &em_pool.lock);
        }
        seen = em_pool.generation;
        em_pool_drain();
    }
    return NULL;
}

/* Runs nslices slices of fn over up to nslices threads (the caller included).  Returns 0, or -1 if no worker
 * could be started (then the caller ran every slice itself). */
static int em_parallel_run(int64_t nslices, em_slice_fn fn, const void* ctx) {
    if (nslices <= 1) { fn(ctx, 0, 1); return 0; }
    pthread_mutex_lock(&em_pool_region);
    pthread_mutex_lock(&em_pool.lock);
    int status = 0;
    while (em_pool.workers < nslices - 1 && em_pool.workers < EM_MAX_THREADS - 1) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&t, &attr, em_pool_worker, NULL);
        pthread_attr_destroy(&attr);
        if (rc != 0) { status = -1; break; }
        em_pool.workers++;
    }
    em_pool.fn = fn;
    em_pool.ctx = ctx;
    em_pool.nslices = nslices;
    em_pool.next = 0;
    em_pool.finished = 0;
    __atomic_store_n(&em_pool.generation, em_pool.generation + 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&em_pool.wake);
    em_pool_drain();
    while (em_pool.finished < em_pool.nslices) pthread_cond_wait(&em_pool.done, &em_pool.lock);
    em_pool.fn = NULL;
    pthread_mutex_unlock(&em_pool.lock);
    pthread_mutex_unlock(&em_pool_region);
    return status;
}
#endif  /* EM_NO_THREADS */

/* Element-wise work split (ops with no reduction across elements): fn(ctx, begin, end) over [0, total) in up to
 * `threads` contiguous ranges whose bounds are multiples of `align` elements (vector width, so that only the last
 * range has a tail), each at least `min_per_slice` elements (below that a wake-up costs more than it saves).
 * Ranges are disjoint and cover [0, total) once, so the outputs are the same bytes for any thread count. */
typedef void (*em_range_fn)(const void* ctx, int64_t begin, int64_t end);

typedef struct { em_range_fn fn; const void* ctx; int64_t total, align; } em_range_call;

static inline void em_range_slice(const void* c, int64_t slice, int64_t nslices) {
    const em_range_call* call = (const em_range_call*)c;
    const int64_t units = (call->total + call->align - 1) / call->align;
    int64_t begin = units * slice / nslices * call->align, end = units * (slice + 1) / nslices * call->align;
    if (end > call->total) end = call->total;
    if (begin < end) call->fn(call->ctx, begin, end);
}

static inline int em_parallel_range(int64_t threads, int64_t total, int64_t align, int64_t min_per_slice,
                                    em_range_fn fn, const void* ctx) {
    if (align < 1) align = 1;
    if (min_per_slice < 1) min_per_slice = 1;
    int64_t n = total / min_per_slice;
    if (n > threads) n = threads;
    if (n <= 1) {
        if (total > 0) fn(ctx, 0, total);
        return 0;
    }
    const em_range_call call = {fn, ctx, total, align};
    return em_parallel_run(n, em_range_slice, &call);
}
#endif
