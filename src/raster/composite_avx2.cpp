// The compositing kernel built for avx2 (flags in CMakeLists.txt).
#define GHR_ISA avx2
#include "composite_kernel.inc"
