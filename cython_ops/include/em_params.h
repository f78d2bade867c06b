/* One step of a compiled plan: a kernel and its load-time parameters.
 * ptr[] hold tensor / constant addresses, i[] integers, f[] floats.  Each kernel reads them through named slots
 * defined once in its family header: for a layout with prefix EM_X, the enums EM_X_P_<NAME>, EM_X_I_<NAME> and
 * EM_X_F_<NAME>, each ending with EM_X_{P,I,F}_COUNT (a run of slots: <NAME> .. <NAME>_LAST).  Python mirrors
 * them in edgeml/runtime/layouts.py, checked by tests/test_layouts.py.
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
