// The compositing kernel built for avx512 (flags in CMakeLists.txt).
#define GHR_ISA avx512
#include "composite_kernel.inc"
