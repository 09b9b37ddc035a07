// The compositing kernel built for generic (flags in CMakeLists.txt).
#define GHR_ISA generic
#include "composite_kernel.inc"
