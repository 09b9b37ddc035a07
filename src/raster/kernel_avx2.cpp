// The projection and compositing kernels built for avx2 (flags in CMakeLists.txt).
#define GHR_ISA avx2
#define GHR_VECTOR_BYTES 32
#include "kernel.inc"
