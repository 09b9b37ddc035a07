// Shared declarations of the cpu rasterizer (see gaussian_head_ros/core/render/cpu_backend.py for the image model):
// raster.cpp runs a frame's pipeline (projection, depth sort, tile binning, compositing) in one parallel region;
// kernel.inc holds the two stages built once per instruction set (projection and compositing).
#pragma once
#include <atomic>
#include <cstdint>

namespace ghr_raster {

constexpr int kTile = 16;           // tile side (pixels); core/render TILE
constexpr int kCellCols = 8;        // a cell: the 16 pixels (one vector) blended with their state in registers
constexpr int kCellRows = 2;
constexpr int kCells = (kTile / kCellCols) * (kTile / kCellRows);
constexpr int kPacked = 16;         // floats per projected / packed Gaussian; cpu_backend NPK
constexpr float kLn255 = 5.541263545158426f;  // alpha >= 1/255  <=>  exponent <= ln(255 opacity)
constexpr float kSpanEpsPx = 0.02f;  // cpu_backend SPAN_EPS_PX
constexpr float kCulled = 3e38f;     // depth of a Gaussian that is not drawn

// Projected / packed Gaussian fields (geo rows, packed columns).
enum Field { kMx, kMy, kConA, kConB, kConC, kLnOp, kR, kG, kB, kRx, kRy, kTx0, kTx1, kTy0, kTy1, kPad };

struct Scene {  // one frame's inputs (all arrays C-contiguous float32, owned by the caller)
  const float* means;      // [N, 3]
  const float* quats;      // [N, 4] wxyz, any length
  const float* scales;     // [N, 3]
  const float* opacities;  // [N]
  const float* colors;     // [N, 3]
  const float* viewmat;    // [4, 4] world to camera
  const float* K;          // [3, 3]
  int64_t n, width, height;
  float near_plane, eps2d, alpha_min, margin;
};

struct Frame {  // what compositing reads and writes
  const float* packed;        // [V, kPacked] Gaussians in depth order
  const int64_t* tile_start;  // [T + 1] each tile's range in tile_gauss
  const int32_t* tile_gauss;  // [P] rows of `packed`, front to back within a tile
  const int64_t* tile_order;  // [T] the order tiles are drawn in (raster.cpp step 4)
  int64_t num_tiles, tiles_x, width, height;
  const float* background;    // [3]
  float alpha_max, t_min;
  float* image;               // [H, W, 3] or null
  float* alpha;               // [H, W] or null
  uint8_t* rgb8;              // [H, W, 3] or null (then image and alpha are written)
};

// project: Gaussians [begin, end) of the scene -> geo [kPacked, N] (one row per Field) and depth [N] (camera z,
// kCulled when not drawn). composite_tiles: draws tiles taken from `next` until none is left.
#define GHR_DECLARE(isa)                                                                         \
  namespace isa {                                                                                \
  void project(const Scene& s, float* geo, float* depth, int64_t begin, int64_t end);            \
  void composite_tiles(const Frame& f, std::atomic<int64_t>& next);                              \
  }
GHR_DECLARE(generic)
GHR_DECLARE(avx2)
GHR_DECLARE(avx512)
#undef GHR_DECLARE

}  // namespace ghr_raster
