// C entry points of the cpu rasterizer: a frame's whole pipeline in one parallel region.
//
// The caller's thread and threads - 1 workers (kept between frames, see Pool) go through the stages together, with a
// barrier between them (std::barrier: a short spin, then a futex sleep); the serial steps run as the barriers'
// completion, on whichever thread arrives last:
//   1. projection (kernel.inc), blocks of Gaussians taken from a shared counter;
//   2. serial: the drawn Gaussians' depth order (stable LSD radix sort on the float bits) and their ranks;
//   3. packing and counting: each Gaussian's projected fields copied to its row in depth order (read in Gaussian
//      order: reading in depth order gathers 16 scattered floats per Gaussian, measured slower), and counted into
//      the 16x16 tiles its ellipse's bounding box reaches, per worker and slice of the depth order;
//   4. serial: prefix sums (where each slice writes in each tile: depth order kept), tile order (heaviest first
//      for several threads, to balance them; row by row for one: neighbouring tiles share Gaussians, still in cache);
//   5. filling the tile lists (counting sort), one slice of the depth order each;
//   6. compositing (kernel.inc), tiles taken from a shared counter.
// Why one region: with numba's parallel loops for stages 1, 3 and 5 and this library's threads for 6, a 512^2
// frame of a 60k avatar on the 2-core development machine spent ~40 voluntary context switches per frame in the
// thread pools' wake-ups and sleeps, and the 2-thread frame took ~1.9 ms more than its stages.
// Work buffers live in a workspace kept between frames (first touches of fresh memory are page faults).
#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <system_error>
#include <thread>
#include <unistd.h>
#include <vector>

#include "raster.h"

namespace {

using ghr_raster::Frame;
using ghr_raster::Scene;
using ghr_raster::kPacked;

struct Kernels {
  void (*project)(const Scene&, float*, float*, int64_t, int64_t);
  void (*composite_tiles)(const Frame&, std::atomic<int64_t>&);
};

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

Kernels kernels(int isa) {
#if defined(GHR_X86)
  if (isa == 2) return {ghr_raster::avx512::project, ghr_raster::avx512::composite_tiles};
  if (isa == 1) return {ghr_raster::avx2::project, ghr_raster::avx2::composite_tiles};
#endif
  return {ghr_raster::generic::project, ghr_raster::generic::composite_tiles};
}

// A grow-only buffer whose contents are not initialised (and not touched again when it is big enough), aligned to
// 64 bytes (a cache line: a packed Gaussian's 16 floats are one line, not two).
template <class T>
class Buffer {
 public:
  T* get(size_t n) {
    if (n > cap_) {
      cap_ = std::max<size_t>(n + n / 4, 1024);
      data_.reset(new (std::align_val_t(64)) T[cap_]);
    }
    return data_.get();
  }

 private:
  struct Free {
    void operator()(T* p) const { ::operator delete[](p, std::align_val_t(64)); }
  };
  std::unique_ptr<T[], Free> data_;
  size_t cap_ = 0;
};

// Worker threads kept between frames, asleep in between. Started once rather than per frame: a new thread
// starts with a scheduler debit (CFS places it a slice behind the others) while a woken one gets a sleeper's
// credit; on the loaded 2-core machine a thread started per frame began ~1.6 ms late (the 2-thread frame's
// projection waited for it), a woken one does not. A child process of a fork has none of its parent's
// threads: the pool is started again there.
class Pool {
 public:
  ~Pool() { stop(); }

  // Runs fn(w) for w = 0 .. threads - 1, fn(0) on the calling thread, and returns when all have returned.
  // Fewer when threads cannot be started: returns how many ran. `ready(k)` is called first with that count.
  int run(int threads, const std::function<void(int)>& ready, const std::function<void(int)>& fn) {
    if (pid_ != getpid()) {  // (a forked child: the threads are not there)
      for (auto& w : workers_) w.detach();
      workers_.clear();
      pid_ = getpid();
    }
    while (int(workers_.size()) < threads - 1) {
      try {
        workers_.emplace_back([this, id = int(workers_.size()) + 1] { loop(id); });
      } catch (const std::system_error&) {
        break;
      }
    }
    const int k = std::min(threads, int(workers_.size()) + 1);
    ready(k);
    if (k > 1) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        job_ = &fn, active_ = k, remaining_ = k - 1, generation_++;
      }
      wake_.notify_all();
    }
    fn(0);
    if (k > 1) {
      std::unique_lock<std::mutex> lock(mutex_);
      done_.wait(lock, [this] { return remaining_ == 0; });
    }
    return k;
  }

 private:
  void loop(int id) {
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
      if (id >= active_) continue;  // not needed for this frame
      const auto* fn = job_;
      lock.unlock();
      (*fn)(id);
      lock.lock();
      if (--remaining_ == 0) done_.notify_one();
    }
  }

  void stop() {
    if (pid_ != getpid()) return;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
  }

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(int)>* job_ = nullptr;
  int active_ = 0, remaining_ = 0;
  uint64_t generation_ = 0;
  bool stopping_ = false;
  pid_t pid_ = getpid();
};

struct Workspace {
  Pool pool;
  Buffer<float> geo, depth, packed;
  Buffer<uint32_t> keys, tmp_k;
  Buffer<int32_t> vis, tmp_i, rank, bounds, gauss;
  Buffer<int64_t> counts, start, offs, tile_order;
};

// Indices of the drawn Gaussians (depth < kCulled) in stable depth order (returned: vis or tmp_i), count in nv.
const int32_t* depth_order(const float* depth, int64_t n, int32_t* vis, int32_t* tmp_i, uint32_t* keys,
                           uint32_t* tmp_k, int64_t& nv) {
  nv = 0;
  for (int64_t i = 0; i < n; i++) {
    vis[nv] = int32_t(i);
    nv += depth[i] < 1e38f;
  }
  uint32_t lo = 0xFFFFFFFFu, hi = 0;
  for (int64_t j = 0; j < nv; j++) {
    uint32_t k;
    std::memcpy(&k, &depth[vis[j]], 4);  // positive floats order as their bits
    keys[j] = k;
    lo = std::min(lo, k), hi = std::max(hi, k);
  }
  int64_t cnt[2049];
  for (int shift : {0, 11, 22}) {
    if (((lo ^ hi) >> shift) == 0) break;  // this digit and all above it are the same for every key
    std::fill(cnt, cnt + 2049, 0);
    for (int64_t j = 0; j < nv; j++) cnt[((keys[j] >> shift) & 2047) + 1]++;
    for (int b = 0; b < 2048; b++) cnt[b + 1] += cnt[b];
    for (int64_t j = 0; j < nv; j++) {
      const int64_t d = cnt[(keys[j] >> shift) & 2047]++;
      tmp_i[d] = vis[j];
      tmp_k[d] = keys[j];
    }
    std::swap(vis, tmp_i);
    std::swap(keys, tmp_k);
  }
  return vis;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

extern "C" {

// The instruction set ghr_render uses when given isa = -1: "avx512", "avx2" or "generic".
const char* ghr_raster_isa(int isa) { return kNames[chosen(isa)]; }

// A workspace for ghr_render (buffers kept between frames); null when out of memory. Not for two frames at once.
void* ghr_workspace_new() { return new (std::nothrow) Workspace(); }
void ghr_workspace_free(void* ws) { delete static_cast<Workspace*>(ws); }

// Draws one frame (see the top of this file and cpu_backend.py): the scene's Gaussians (float32, C-contiguous),
// into image [H, W, 3] + alpha [H, W] float32, or rgb8 [H, W, 3] uint8 when rgb8 is not null. threads >= 1;
// isa: -1 = the best this CPU has, 0/1/2 = generic/avx2/avx512 (at most the best). stats (null or [7]) gets the
// seconds of projection, sort, binning and compositing as seen by the calling thread, then the counts of drawn
// Gaussians, tile-Gaussian pairs and Gaussian-pixel evaluations (the drawn ellipses' areas, 2 pi thr / sqrt(det),
// off-screen parts included). Returns 0, or -1 when out of memory (nothing drawn).
int ghr_render(void* workspace, const float* means, const float* quats, const float* scales, const float* opacities,
               const float* colors, const float* viewmat, const float* K, int64_t n, int64_t width, int64_t height,
               float near_plane, float eps2d, float alpha_min, float margin, const float* background, float alpha_max,
               float t_min, float* image, float* alpha, uint8_t* rgb8, int threads, int isa, double* stats) {
  using clock = std::chrono::steady_clock;
  auto& ws = *static_cast<Workspace*>(workspace);
  const Kernels kern = kernels(chosen(isa));
  const Scene scene{means, quats, scales, opacities, colors, viewmat, K, n, width, height, near_plane, eps2d,
                    alpha_min, margin};
  threads = std::max(threads, 1);
  const int64_t nchunks = threads;  // slices of the depth order (stages 3 and 5)
  const int64_t tw = (width + ghr_raster::kTile - 1) / ghr_raster::kTile;
  const int64_t nt = tw * ((height + ghr_raster::kTile - 1) / ghr_raster::kTile);
  float *geo, *depth, *packed;
  uint32_t *keys, *tmp_k;
  int32_t *vis, *tmp_i, *rank, *bounds;
  int64_t *counts, *start, *offs, *tile_order;
  try {
    const size_t nn = size_t(std::max<int64_t>(n, 1));
    geo = ws.geo.get(nn * kPacked), depth = ws.depth.get(nn), packed = ws.packed.get(nn * kPacked);
    keys = ws.keys.get(nn), tmp_k = ws.tmp_k.get(nn), vis = ws.vis.get(nn), tmp_i = ws.tmp_i.get(nn);
    rank = ws.rank.get(nn), bounds = ws.bounds.get(nn * 4);
    counts = ws.counts.get(size_t(threads * nchunks * nt)), start = ws.start.get(size_t(nt + 1));
    offs = ws.offs.get(size_t(nchunks * nt)), tile_order = ws.tile_order.get(size_t(nt));
  } catch (const std::bad_alloc&) {
    return -1;
  }

  // Shared state of the frame, written by the serial steps (barrier completions) and read after the barrier.
  const int32_t* order = nullptr;
  int64_t nv = 0, pairs = 0;
  int32_t* gauss = nullptr;
  bool failed = false;
  std::atomic<int64_t> next_project{0}, next_pack{0}, next_fill{0}, next_tile{0};
  constexpr int64_t kBlock = 4096;  // Gaussians per block of stages 1 and 3

  auto serial_sort = [&]() noexcept {
    order = depth_order(depth, n, vis, tmp_i, keys, tmp_k, nv);
    std::fill(rank, rank + n, -1);
    for (int64_t j = 0; j < nv; j++) rank[order[j]] = int32_t(j);
  };
  auto serial_offsets = [&]() noexcept {
    const int64_t nw = threads;
    start[0] = 0;
    for (int64_t t = 0; t < nt; t++) {
      int64_t acc = start[t];
      for (int64_t c = 0; c < nchunks; c++) {
        offs[c * nt + t] = acc;
        for (int64_t w = 0; w < nw; w++) acc += counts[(w * nchunks + c) * nt + t];
      }
      start[t + 1] = acc;
    }
    pairs = start[nt];
    for (int64_t t = 0; t < nt; t++) tile_order[t] = t;
    // one thread: row by row (a tile's Gaussians mostly read for its left neighbour just before: 0.96x the CPU time a
    // frame, session 63's 72 frames of six avatars with the two builds alternated); several: heaviest first
    if (threads > 1) std::stable_sort(tile_order, tile_order + nt, [&](int64_t a, int64_t b) {
      return start[a + 1] - start[a] > start[b + 1] - start[b];
    });
    try {
      gauss = ws.gauss.get(size_t(std::max<int64_t>(pairs, 1)));
    } catch (const std::bad_alloc&) {
      failed = true;
    }
  };
  // The barriers' completions: sort after projection, offsets after counting, nothing after filling.
  int phase = 0;
  auto completion = [&]() noexcept {
    if (phase == 0) serial_sort();
    if (phase == 1) serial_offsets();
    phase++;
  };
  std::optional<std::barrier<decltype(completion)>> sync;  // made once the number of threads is known

  auto work = [&](int w, double* times) {
    auto t0 = clock::now();
    for (int64_t b = next_project++; b * kBlock < n; b = next_project++)
      kern.project(scene, geo, depth, b * kBlock, std::min(n, (b + 1) * kBlock));
    if (times) times[0] = seconds_since(t0), t0 = clock::now();
    sync->arrive_and_wait();  // + depth order (serial)
    if (times) times[1] = seconds_since(t0), t0 = clock::now();
    int64_t* cnt = counts + w * nchunks * nt;  // worker w counts into its own slab (zeroed before)
    for (int64_t b = next_pack++; b * kBlock < n; b = next_pack++) {
      for (int64_t i = b * kBlock, e = std::min(n, (b + 1) * kBlock); i < e; i++) {
        const int64_t j = rank[i];
        if (j < 0) continue;
        float* row = packed + j * kPacked;
        for (int k = 0; k < kPacked; k++) row[k] = geo[k * n + i];
        const int32_t tx0 = int32_t(row[ghr_raster::kTx0]), tx1 = int32_t(row[ghr_raster::kTx1]);
        const int32_t ty0 = int32_t(row[ghr_raster::kTy0]), ty1 = int32_t(row[ghr_raster::kTy1]);
        int32_t* bd = bounds + 4 * j;
        bd[0] = tx0, bd[1] = tx1, bd[2] = ty0, bd[3] = ty1;
        const int64_t c = ((j + 1) * nchunks - 1) / nv;  // the c with c nv / nchunks <= j < (c + 1) nv / nchunks
        int64_t* cc = cnt + c * nt;
        for (int32_t ty = ty0; ty <= ty1; ty++)
          for (int32_t tx = tx0; tx <= tx1; tx++) cc[ty * tw + tx]++;
      }
    }
    sync->arrive_and_wait();  // + offsets and tile order (serial)
    if (!failed) {
      for (int64_t c = next_fill++; c < nchunks; c = next_fill++) {
        int64_t* fill = offs + c * nt;
        for (int64_t j = c * nv / nchunks, e = (c + 1) * nv / nchunks; j < e; j++) {
          const int32_t* bd = bounds + 4 * j;
          for (int32_t ty = bd[2]; ty <= bd[3]; ty++)
            for (int32_t tx = bd[0]; tx <= bd[1]; tx++) gauss[fill[ty * tw + tx]++] = int32_t(j);
        }
      }
    }
    sync->arrive_and_wait();
    if (times) times[2] = seconds_since(t0), t0 = clock::now();
    if (!failed) {
      const Frame f{packed, start, gauss, tile_order, nt, tw, width, height, background, alpha_max, t_min,
                    image,  alpha, rgb8};
      kern.composite_tiles(f, next_tile);
    }
  };

  double times[4] = {0, 0, 0, 0};
  const auto t_start = clock::now();
  std::fill(counts, counts + threads * nchunks * nt, 0);
  ws.pool.run(threads, [&](int k) { sync.emplace(k, completion); },
              [&](int w) { work(w, w == 0 && stats ? times : nullptr); });
  if (stats) {
    times[3] = seconds_since(t_start) - times[0] - times[1] - times[2];
    double evals = 0.0;
    for (int64_t j = 0; j < nv; j++) {
      const float* p = packed + j * kPacked;
      const double a = 2.0 * p[ghr_raster::kConA], b = p[ghr_raster::kConB], c = 2.0 * p[ghr_raster::kConC];
      const double thr = std::max(double(p[ghr_raster::kLnOp]) + double(ghr_raster::kLn255), 0.0);
      evals += 2.0 * M_PI * thr / std::sqrt(std::max(a * c - b * b, 1e-30));
    }
    const double out[7] = {times[0], times[1], times[2], times[3], double(nv), double(pairs), evals};
    std::memcpy(stats, out, sizeof out);
  }
  return failed ? -1 : 0;
}

}  // extern "C"
