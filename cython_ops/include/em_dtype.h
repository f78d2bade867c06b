/* Element type codes of the kernels that take more than one type (index, compare, cast, reduce, resize);
 * edgeml/runtime/ops/element_types.py mirrors them. */
#ifndef EM_DTYPE_H
#define EM_DTYPE_H
#include <stdint.h>

#define EM_DT_F32 0
#define EM_DT_I8 1
#define EM_DT_U8 2
#define EM_DT_I16 3
#define EM_DT_U16 4
#define EM_DT_I32 5
#define EM_DT_I64 6
#define EM_DT_BOOL 7

/* One statement per element type, T naming the C type: EM_DT_SWITCH(code, ...T...). */
#define EM_DT_SWITCH(code, ...)                                    \
    switch (code) {                                                \
    case EM_DT_F32: { typedef float T; __VA_ARGS__ } break;               \
    case EM_DT_I8: { typedef int8_t T; __VA_ARGS__ } break;               \
    case EM_DT_U8: { typedef uint8_t T; __VA_ARGS__ } break;              \
    case EM_DT_I16: { typedef int16_t T; __VA_ARGS__ } break;             \
    case EM_DT_U16: { typedef uint16_t T; __VA_ARGS__ } break;            \
    case EM_DT_I32: { typedef int32_t T; __VA_ARGS__ } break;             \
    case EM_DT_I64: { typedef int64_t T; __VA_ARGS__ } break;             \
    case EM_DT_BOOL: { typedef uint8_t T; __VA_ARGS__ } break;            \
    }

/* An index of type code 3 (int16), 5 (int32) or 6 (int64) at position k. */
static inline int64_t em_read_index(const void* p, int64_t k, int code) {
    switch (code) {
    case EM_DT_I16: return ((const int16_t*)p)[k];
    case EM_DT_I32: return ((const int32_t*)p)[k];
    default: return ((const int64_t*)p)[k];
    }
}
#endif
