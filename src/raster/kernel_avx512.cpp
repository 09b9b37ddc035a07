// The projection and compositing kernels built for avx512 (flags in CMakeLists.txt).
#define GHR_ISA avx512
#define GHR_VECTOR_BYTES 64
#include "kernel.inc"
