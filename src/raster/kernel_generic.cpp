// The projection and compositing kernels built for generic (flags in CMakeLists.txt).
#define GHR_ISA generic
#define GHR_VECTOR_BYTES 16
#include "kernel.inc"
