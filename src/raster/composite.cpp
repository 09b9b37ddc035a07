// C entry point of the compositing kernel: picks the instruction set at run time and runs `threads` workers
// that take tiles from a shared counter (heaviest tiles first, so the last ones to finish are short).
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "composite.h"

namespace {

using Kernel = void (*)(const ghr_raster::Frame&, std::atomic<int64_t>&);

int detect() {
#if defined(GHR_X86)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512bw"))
    return 2;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
#endif
  return 0;
}

const char* const kNames[] = {"generic", "avx2", "avx512"};

int chosen(int force) {
  static const int best = detect();
  return force >= 0 && force < best ? force : best;
}

Kernel kernel(int isa) {
#if defined(GHR_X86)
  if (isa == 2) return ghr_raster::avx512::composite_tiles;
  if (isa == 1) return ghr_raster::avx2::composite_tiles;
#endif
  return ghr_raster::generic::composite_tiles;
}

}  // namespace

extern "C" {

// The instruction set composite() uses when given isa = -1: "avx512", "avx2" or "generic".
const char* ghr_composite_isa(int isa) { return kNames[chosen(isa)]; }

// Draws every tile of the frame; isa: -1 = the best this CPU has, 0/1/2 = generic/avx2/avx512 (at most the best).
void ghr_composite(const float* packed, const int64_t* tile_start, const int32_t* tile_gauss, const int64_t* tile_order,
                   int64_t num_tiles, int64_t tiles_x, int64_t width, int64_t height, const float* background,
                   float alpha_max, float t_min, float* image, float* alpha, uint8_t* rgb8, int threads, int isa) {
  const ghr_raster::Frame f{packed,     tile_start, tile_gauss, tile_order, num_tiles, tiles_x, width, height,
                            background, alpha_max,  t_min,      image,      alpha,     rgb8};
  const Kernel run = kernel(chosen(isa));
  std::atomic<int64_t> next{0};
  std::vector<std::thread> workers;
  for (int i = 1; i < threads; i++) workers.emplace_back([&] { run(f, next); });
  run(f, next);
  for (auto& w : workers) w.join();
}

}  // extern "C"
