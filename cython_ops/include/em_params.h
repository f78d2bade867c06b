/* One step of a compiled plan: a kernel and its load-time parameters.
 * ptr[] hold tensor / constant addresses, i[] integers, f[] floats; each kernel documents its layout.
 * Everything here is fixed at load; kernels only compute. */
#ifndef EM_PARAMS_H
#define EM_PARAMS_H
#include <stdint.h>

#define EM_MAX_PTRS 16
#define EM_MAX_INTS 64
#define EM_MAX_FLOATS 8

typedef struct {
    void* ptr[EM_MAX_PTRS];
    int64_t i[EM_MAX_INTS];
    float f[EM_MAX_FLOATS];
} em_params;

typedef void (*em_kernel)(const em_params* p);

#endif
