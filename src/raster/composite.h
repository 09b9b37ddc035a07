// Shared declarations of the compositing kernel (see composite_kernel.inc).
#pragma once
#include <atomic>
#include <cstdint>

namespace ghr_raster {

constexpr int kTile = 16;           // tile side (pixels); core/render TILE
constexpr int kCellCols = 8;        // a cell: the 16 pixels (one vector) blended with their state in registers
constexpr int kCellRows = 2;
constexpr int kCells = (kTile / kCellCols) * (kTile / kCellRows);
constexpr int kPacked = 16;         // floats per packed Gaussian row; cpu_backend NPK
constexpr float kLn255 = 5.541263545158426f;  // alpha >= 1/255  <=>  exponent <= ln(255 opacity)
constexpr float kSpanEpsPx = 0.02f;  // cpu_backend SPAN_EPS_PX

struct Frame {  // one frame's inputs and outputs (all arrays C-contiguous, owned by the caller)
  const float* packed;        // [V, kPacked] Gaussians in depth order (cpu_backend._pack_count)
  const int64_t* tile_start;  // [T + 1] each tile's range in tile_gauss
  const int32_t* tile_gauss;  // [P] rows of `packed`, front to back within a tile
  const int64_t* tile_order;  // [T] the order tiles are handed to threads (heaviest first)
  int64_t num_tiles, tiles_x, width, height;
  const float* background;    // [3]
  float alpha_max, t_min;
  float* image;               // [H, W, 3] or null
  float* alpha;               // [H, W] or null
  uint8_t* rgb8;              // [H, W, 3] or null (then image and alpha are written)
};

#define GHR_DECLARE(isa) namespace isa { void composite_tiles(const Frame& f, std::atomic<int64_t>& next); }
GHR_DECLARE(generic)
GHR_DECLARE(avx2)
GHR_DECLARE(avx512)
#undef GHR_DECLARE

}  // namespace ghr_raster
