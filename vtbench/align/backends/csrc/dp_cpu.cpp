// The DP engine's recursions on the CPU, vectorised across pairs.
//
//   R_s[i,j] = C_s[i,j] + smin_gamma { R_s'[i-di, j-dj] : (s', di, dj) in moves[s] }      (forward)
//   E[pred] += E[cell] * w[cell -> pred],  w = exp((R[cell] - C[cell] - R[pred]) / gamma)  (backward)
//
// (vtbench/align/recursions.py defines the recursions; backends/torch_ref.py is the reference this
// file must equal.) Pairs are processed in chunks of L lanes (24 or 16, or 4 or 1 for small batches,
// so that padding never costs much), batch innermost in memory, so the innermost loop runs over the L
// independent pairs of one cell, contiguous and branch-free, in SIMD registers. Every move goes back
// one row or one column, so the forward sweeps row by row (and, within a row, state by state: a
// horizontal move never reads a later state) holding two rows of R, and the backward sweeps in the
// reverse order holding two rows of E; rows of cost and of gradient move between the pair-major
// tensors and the lane-innermost rows in 8 x 8 blocks transposed in registers.
//
// The forward stores what the backward needs and nothing else, so that the backward has no exp at
// all: for gamma > 0 the soft-min weights of the moves of every cell (the probabilities the forward
// computes anyway; for float32 costs two floats per cell, see relax_row3), for gamma = 0 the index of
// the first argmin (int8), and the weights of the final states at each pair's end cell. Everything
// is accumulated in float64. Chunks run in parallel (for_chunks). exp and log are written out below
// (branch-free, about 1 ulp) because libm's do not vectorise without -ffast-math, and -ffast-math
// would break the +inf costs that bands and Drop-DTW rely on. The hot loops are written twice: once
// as plain loops over lanes that the compiler vectorises (any recursion, any lane count, any
// compiler), and once in explicit vectors (namespace vec: GCC and Clang) for three-move states on
// 8k lanes, the case of soft-DTW, OTAM and S2DTW.
//
// For S2DTW the cost may be interleaved (Problem::interleaved): the grid's rows are then assembled
// from the cost cells and the skip cost as they are swept, and only the cost cells' gradient is
// stored. S2DTW's local smoothing, which is not a recursion, is at the end of the file.
#include <ATen/Parallel.h>
#include <torch/extension.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <mutex>
#include <optional>
#include <type_traits>
#include <vector>
#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace {

constexpr double INF = std::numeric_limits<double>::infinity();
// Pairs per chunk: two AVX-512 (or four AVX2) registers of doubles for batches of more than 8 pairs,
// three for batches of at least 192 (where padding the last chunk costs little). The forward sweep
// is a chain of dependent exp/log along each row, so more than one register of independent lanes
// keeps the vector units busy (the row kernel alone, per cell and pair: 8 lanes 6.3 ns, 16 lanes
// 3.4 ns, 24 lanes 3.1 ns, 32 lanes 3.3 ns).
constexpr int MAX_LANES = 24;
int lanes_for(int64_t batch) { return batch >= 192 ? 24 : batch > 8 ? 16 : batch > 2 ? 4 : 1; }
constexpr int MAX_STATES = 4, MAX_MOVES = 4;
#if defined(__GNUC__) && !defined(VTB_NO_VECTORS)  // GCC and Clang: explicit vectors (namespace vec below)
#define VTB_VECTORS 1
constexpr bool VECTORS = true;
#else
constexpr bool VECTORS = false;
#endif
constexpr double SHIFTER = 0x1.8p52;  // adding it rounds a double to an integer held in the low bits
constexpr double LN2_HI = 0x1.62e42fee00000p-1, LN2_LO = 0x1.a39ef35793c76p-33;

inline int64_t bits(double x) { int64_t b; std::memcpy(&b, &x, 8); return b; }
inline double from_bits(int64_t b) { double x; std::memcpy(&x, &b, 8); return x; }

// exp(x) for x <= 0 (a tiny positive rounding excess is fine); 0 below -708 (and for -inf).
// x = k ln2 + r with |r| <= ln2 / 2, exp(r) by its Taylor polynomial of degree 13 (error < 1e-17).
inline double exp_nonpositive(double x) {
  const double xc = x < -708.0 ? -708.0 : (x > 709.0 ? 709.0 : x);
  const double t = xc * 0x1.71547652b82fep0 + SHIFTER;  // log2(e)
  const double k = t - SHIFTER;
  const double r = (xc - k * LN2_HI) - k * LN2_LO;
  double p = 1.0 / 6227020800.0;  // 1/13!
  constexpr double inv_fact[13] = {1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0, 1.0 / 362880.0,
                                   1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0,
                                   1.0 / 6.0, 0.5, 1.0, 1.0};
  for (double c : inv_fact) p = p * r + c;
  const double scale = from_bits((bits(t) - bits(SHIFTER) + 1023) << 52);  // 2^k
  return x < -708.0 ? 0.0 : p * scale;
}

// log(y) for a positive normal y: y = 2^e m with m in [sqrt(1/2), sqrt(2)),
// log m = 2 atanh(s) = 2 (s + s^3/3 + ... + s^23/23) with s = (m-1)/(m+1), |s| < 0.172.
inline double log_positive(double y) {
  const int64_t b = bits(y);
  int64_t e = (b >> 52) - 1023;
  double m = from_bits((b & 0xfffffffffffffLL) | 0x3ff0000000000000LL);
  const bool big = m > 0x1.6a09e667f3bcdp0;
  m = big ? 0.5 * m : m;
  e = big ? e + 1 : e;
  const double s = (m - 1.0) / (m + 1.0), s2 = s * s;
  double p = 1.0 / 23.0;
  for (int k = 21; k >= 1; k -= 2) p = p * s2 + 1.0 / k;
  const double ed = from_bits(e + bits(SHIFTER)) - SHIFTER;  // int64 -> double, vectorisable
  return ed * LN2_HI + (2.0 * s * p + ed * LN2_LO);
}

#ifdef VTB_VECTORS
// Vectors of 8 doubles in the compilers' generic vector extension: one AVX-512 register, two AVX2
// ones, four NEON ones. Used for the hot case of the forward (relax_row3 below) and for moving
// 8 x 8 blocks between the pair-major tensors and the lane-innermost rows.
namespace vec {
typedef double vd __attribute__((vector_size(64)));
typedef int64_t vi __attribute__((vector_size(64)));
typedef float vf __attribute__((vector_size(32)));
constexpr int W = 8;
inline vd load(const double* p) { vd v; std::memcpy(&v, p, sizeof v); return v; }
inline void store(double* p, vd v) { std::memcpy(p, &v, sizeof v); }
inline void store(float* p, vd v) { const vf f = __builtin_convertvector(v, vf); std::memcpy(p, &f, sizeof f); }
inline vd splat(double x) { return vd{} + x; }
inline vi as_int(vd x) { vi r; std::memcpy(&r, &x, sizeof r); return r; }
inline vd as_double(vi x) { vd r; std::memcpy(&r, &x, sizeof r); return r; }
#if defined(__clang__)  // (older clang has no ?: on these vectors)
inline vd sel(vi m, vd a, vd b) { return as_double((as_int(a) & m) | (as_int(b) & ~m)); }
#else
inline vd sel(vi m, vd a, vd b) { return m ? a : b; }
#endif
inline vd load(const float* p) { vf f; std::memcpy(&f, p, sizeof f); return __builtin_convertvector(f, vd); }

#if defined(__clang__)
#define VTB_SHUFFLE(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#else
#define VTB_SHUFFLE(a, b, ...) __builtin_shuffle(a, b, vi{__VA_ARGS__})
#endif
// dst[c * dst_stride + r] = src[r * src_stride + c] for r, c < 8, converting the element type
template <typename S, typename D>
__attribute__((always_inline)) inline void transpose8(const S* src, int64_t src_stride, D* dst, int64_t dst_stride) {
  vd r[8], t[8], u[8];
  for (int k = 0; k < 8; ++k) r[k] = load(src + k * src_stride);
  for (int k = 0; k < 8; k += 2) {  // t[k]: rows k, k+1 at even columns; t[k+1]: at odd columns
    t[k] = VTB_SHUFFLE(r[k], r[k + 1], 0, 8, 2, 10, 4, 12, 6, 14);
    t[k + 1] = VTB_SHUFFLE(r[k], r[k + 1], 1, 9, 3, 11, 5, 13, 7, 15);
  }
  for (int k = 0; k < 8; k += 4)  // u[k + c]: rows k..k+3 at columns c, c + 4 (c = 0, 2 | 1, 3)
    for (int o = 0; o < 2; ++o) {
      u[k + o] = VTB_SHUFFLE(t[k + o], t[k + o + 2], 0, 1, 8, 9, 4, 5, 12, 13);
      u[k + o + 2] = VTB_SHUFFLE(t[k + o], t[k + o + 2], 2, 3, 10, 11, 6, 7, 14, 15);
    }
  for (int c = 0; c < 4; ++c) {  // u[c] holds columns c and c + 4 of rows 0..3, u[c + 4] of rows 4..7
    store(dst + c * dst_stride, VTB_SHUFFLE(u[c], u[c + 4], 0, 1, 2, 3, 8, 9, 10, 11));
    store(dst + (c + 4) * dst_stride, VTB_SHUFFLE(u[c], u[c + 4], 4, 5, 6, 7, 12, 13, 14, 15));
  }
}

// exp_nonpositive above, lane-wise (the same reduction, the same Taylor polynomial in Estrin's
// scheme), for x <= 0 only (or -inf)
inline vd exp_nonpositive(vd x) {
  const vi under = x < -708.0;
  const vd xc = sel(x > -708.0, x, splat(-708.0));  // a max instruction
  const vd t = xc * 0x1.71547652b82fep0 + SHIFTER;
  const vd k = t - SHIFTER;
  const vd r = (xc - k * LN2_HI) - k * LN2_LO;
  const vd r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
  const vd q0 = 1.0 + r, q1 = 1.0 / 2 + r * (1.0 / 6), q2 = 1.0 / 24 + r * (1.0 / 120),
           q3 = 1.0 / 720 + r * (1.0 / 5040), q4 = 1.0 / 40320 + r * (1.0 / 362880),
           q5 = 1.0 / 3628800 + r * (1.0 / 39916800), q6 = 1.0 / 479001600 + r * (1.0 / 6227020800);
  const vd p = ((q0 + q1 * r2) + (q2 + q3 * r2) * r4) + ((q4 + q5 * r2) + q6 * r4) * r8;
  const vd scale = as_double((as_int(t) - bits(SHIFTER) + 1023) << 52);  // 2^k
  return sel(under, splat(0.0), p * scale);
}

// log_positive above, lane-wise, with the series cut after s^19/19 (the next term, < 2.3e-17
// relative, is below the rounding); also returns 1 / y (one division for both)
inline vd log_positive(vd y, vd& inverse) {
  const vi b = as_int(y);
  const vd m0 = as_double((b & 0xfffffffffffffLL) | 0x3ff0000000000000LL);
  const vi big = m0 > 0x1.6a09e667f3bcdp0;  // -1 where true
  const vd m = sel(big, 0.5 * m0, m0);
  const vi e = ((b >> 52) - 1023) - big;
  const vd mp = m + 1.0, q = 1.0 / (mp * y);
  inverse = mp * q;
  const vd s = (m - 1.0) * (y * q), z = s * s, z2 = z * z, z4 = z2 * z2, z8 = z4 * z4;
  const vd p = (((1.0 + z * (1.0 / 3)) + (1.0 / 5 + z * (1.0 / 7)) * z2) +
                ((1.0 / 9 + z * (1.0 / 11)) + (1.0 / 13 + z * (1.0 / 15)) * z2) * z4) +
               (1.0 / 17 + z * (1.0 / 19)) * z8;
  const vd ed = as_double(e + bits(SHIFTER)) - SHIFTER;
  return ed * LN2_HI + (2.0 * s * p + ed * LN2_LO);
}

// Three candidates sorted by a two-comparison network: low, the first argmin (ties to the earlier
// one, as torch.argmin), and the other two, x and y; b1 = v1 < v0, b2 = v2 < min(v0, v1). A soft-min
// then needs only exp(low - x) and exp(low - y): the argmin's own term is exactly 1.
struct Sorted3 {
  vi b1, b2;
  vd low, x, y;
};
inline Sorted3 sort3(vd v0, vd v1, vd v2) {
  const vi b1 = v1 < v0;
  const vd m01 = sel(b1, v1, v0), o01 = sel(b1, v0, v1);
  const vi b2 = v2 < m01;
  return {b1, b2, sel(b2, v2, m01), sel(b2, m01, o01), sel(b2, o01, v2)};
}
// The weights of low, x and y back in the candidates' order: w0, w1, w2.
inline void unsort3(vi b1, vi b2, vd w_low, vd wx, vd wy, vd& w0, vd& w1, vd& w2) {
  const vd w_m01 = sel(b2, wx, w_low), w_o01 = sel(b2, wy, wx);
  w0 = sel(b1, w_o01, w_m01), w1 = sel(b1, w_m01, w_o01), w2 = sel(b2, w_low, wy);
}
}  // namespace vec
#endif

// ---- the recursion, decoded from the flat code written by cpu.py ----
struct Move { int src, di, dj, masked; };
enum Start { NONE = 0, CORNER = 1, LEFT = 2, LEFT_FIRST = 3 };
struct Rec {
  int S = 0, F = 0;
  int finals[MAX_STATES], start[MAX_STATES], K[MAX_STATES];
  Move moves[MAX_STATES][MAX_MOVES];
};

// code = [S, F, finals..., then for each state: start, K, (src, di, dj, masked) * K]
Rec decode(const std::vector<int64_t>& code) {
  Rec rec;
  size_t p = 0;
  auto next = [&]() { TORCH_CHECK(p < code.size(), "vtbench cpu: truncated recursion code"); return (int)code[p++]; };
  rec.S = next();
  rec.F = next();
  TORCH_CHECK(rec.S >= 1 && rec.S <= MAX_STATES && rec.F >= 1 && rec.F <= rec.S, "vtbench cpu: bad state counts");
  for (int f = 0; f < rec.F; ++f) {
    rec.finals[f] = next();
    TORCH_CHECK(rec.finals[f] >= 0 && rec.finals[f] < rec.S, "vtbench cpu: a final state is not a state");
  }
  for (int s = 0; s < rec.S; ++s) {
    rec.start[s] = next();
    TORCH_CHECK(rec.start[s] >= NONE && rec.start[s] <= LEFT_FIRST, "vtbench cpu: unknown start cells");
    rec.K[s] = next();
    TORCH_CHECK(rec.K[s] >= 1 && rec.K[s] <= MAX_MOVES, "vtbench cpu: a state needs 1 to 4 moves");
    for (int k = 0; k < rec.K[s]; ++k) {
      const Move mv{next(), next(), next(), next()};
      TORCH_CHECK(mv.src >= 0 && mv.src < rec.S && mv.di >= 0 && mv.dj >= 0 && mv.di + mv.dj >= 1 && mv.di <= 1 && mv.dj <= 1,
                  "vtbench cpu: a move goes back one row, one column or both");
      TORCH_CHECK(mv.di == 1 || mv.src <= s, "vtbench cpu: a horizontal move may not read a later state (row sweep order)");
      rec.moves[s][k] = mv;
    }
  }
  return rec;
}

// One batch of problems: sizes, recursion, lengths; index helpers for a chunk's buffers.
struct Problem {
  Rec rec;
  int64_t B, S, N, M, L;  // L: lanes per chunk; N x M: the grid the recursion runs on
  double gamma, inv_gamma;
  const int64_t *n_len, *m_len;
  const bool* col_mask;  // (B, M) or nullptr
  // a chunk's saved buffer: S blocks of (N, M, per_cell[s], L): for gamma = 0 the first argmin
  // (int8), for gamma > 0 the weights of the K_s moves (float64), or two floats packed (relax_row3)
  int per_cell[MAX_STATES];
  int64_t saved_base[MAX_STATES + 1];  // where each state's block starts
  bool soft() const { return gamma > 0.0; }
  int64_t saved_size() const { return saved_base[S]; }
  // packed float32 weights: where relax_row3 runs every state (three moves each, 8k lanes)
  bool packable() const {
    bool all3 = true;
    for (int s = 0; s < S; ++s) all3 = all3 && rec.K[s] == 3;
    return VECTORS && soft() && L % 8 == 0 && all3;
  }
  void lay_out(at::ScalarType type) {
    saved_base[0] = 0;
    for (int s = 0; s < S; ++s) {
      per_cell[s] = type == at::kChar ? 1 : type == at::kFloat ? 2 : rec.K[s];
      saved_base[s + 1] = saved_base[s] + N * M * per_cell[s] * L;
    }
  }
  // R (forward) and E (backward) are held two rows at a time, (S, 2, M+1, L), row i in slot i % 2
  int64_t at(int64_t s, int64_t i, int64_t j) const { return ((s * 2 + (i & 1)) * (M + 1) + j) * L; }
  // The cost tensor is (B, S, Nc, Mc): the grid itself (Nc = N, Mc = M), or, interleaved, the cells
  // (2i+1, 2j+1) of a grid N = 2 Nc + 1, M = 2 Mc + 1 whose other cells all hold `fill` (S2DTW's
  // weak-alignment grid, read without ever being built).
  int64_t Nc = 0, Mc = 0;
  bool interleaved = false;
  double fill = 0.0;
  // grid row i (0-based) -> its cost row, or -1 for a row of fill
  int64_t cost_row(int64_t i) const { return !interleaved ? i : (i & 1) ? (i - 1) / 2 : -1; }
  int64_t col_step() const { return interleaved ? 2 * L : L; }  // one cost column to the next, lane-innermost
  int64_t first_col() const { return interleaved ? L : 0; }
};

const double ZEROS[MAX_LANES] = {};

// One thread's working memory: row i of the cost of every state (S, M, L), the column mask as
// additive 0 / +inf (M, L), and two rows of R or E.
// Interleaved: C holds fill in its even columns, which no cost row overwrites, and fill_row is a
// whole row of fill.
struct Scratch {
  std::vector<double> C, mask, rows, fill_row;
  explicit Scratch(const Problem& P)
      : C(P.S * P.M * P.L, P.fill), mask(P.M * P.L), rows(P.S * 2 * (P.M + 1) * P.L),
        fill_row(P.interleaved ? P.M * P.L : 0, P.fill) {}
};

// Start a chunk of pairs b0..b0+nb: padding lanes hold a finite cost and no mask (computed, never read).
void start_chunk(const Problem& P, int64_t b0, int nb, Scratch& w) {
  if (nb < P.L) std::fill(w.C.begin(), w.C.end(), P.fill);
  if (P.col_mask)
    for (int64_t j = 0; j < P.M; ++j)
      for (int l = 0; l < P.L; ++l) w.mask[j * P.L + l] = l < nb && !P.col_mask[(b0 + l) * P.M + j] ? INF : 0.0;
}

// dst[c * dst_ld + r] = src[r * src_ld + c] for r < rows, c < cols, converting the type: the copy
// between a batch's pair-major tensors and the lane-innermost rows, 8 x 8 blocks in registers,
// then what is left over.
template <typename S, typename D>
void copy_transposed(const S* src, int64_t src_ld, D* dst, int64_t dst_ld, int64_t rows, int64_t cols) {
  int64_t r0 = 0;
#ifdef VTB_VECTORS
  for (; r0 + 8 <= rows; r0 += 8) {
    int64_t c0 = 0;
    for (; c0 + 8 <= cols; c0 += 8) vec::transpose8(src + r0 * src_ld + c0, src_ld, dst + c0 * dst_ld + r0, dst_ld);
    for (; c0 < cols; ++c0)
      for (int64_t r = r0; r < r0 + 8; ++r) dst[c0 * dst_ld + r] = static_cast<D>(src[r * src_ld + c0]);
  }
#endif
  for (int64_t r = r0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst[c * dst_ld + r] = static_cast<D>(src[r * src_ld + c]);
}

// Cost row i of every state, float64, batch innermost, into the grid row C (its cost columns).
template <typename scalar_t>
void load_row(const Problem& P, const scalar_t* cost, int64_t b0, int nb, int64_t i, double* C) {
  const int64_t pair = P.S * P.Nc * P.Mc, step = P.col_step();  // from one pair's cost to the next
  for (int64_t s = 0; s < P.S; ++s) {
    const scalar_t* src = cost + (b0 * P.S + s) * P.Nc * P.Mc + i * P.Mc;
    copy_transposed(src, pair, C + s * P.M * P.L + P.first_col(), step, nb, P.Mc);  // lanes l -> columns j
  }
}

// The cost columns of a grid row of E (lane-innermost, E at grid column 1) out to cost row i of
// grad (B, S, Nc, Mc).
template <typename scalar_t>
void store_row(const Problem& P, const double* E, int64_t b0, int nb, int64_t s, int64_t i, scalar_t* grad) {
  const int64_t pair = P.S * P.Nc * P.Mc, step = P.col_step();
  scalar_t* dst = grad + (b0 * P.S + s) * P.Nc * P.Mc + i * P.Mc;
  copy_transposed(E + P.first_col(), step, dst, pair, P.Mc, nb);  // columns j -> lanes l
}

// The moves of state s in row i seen from its cell: offsets into the two rows of R (or E) that are
// the same for every cell of the row, and for each move its additive mask, the column mask
// (stepping one column per cell) where the move is masked, else zeros.
struct RowMoves {
  int64_t offset[MAX_MOVES], add_step[MAX_MOVES];
  const double* add[MAX_MOVES];
};

inline RowMoves row_moves(const Problem& P, int s, int64_t i, const double* mask) {
  RowMoves row;
  for (int k = 0; k < P.rec.K[s]; ++k) {
    const Move& mv = P.rec.moves[s][k];
    row.offset[k] = P.at(mv.src, i - mv.di, 1 - mv.dj) - P.at(s, i, 1);
    const bool masked = mv.masked && mask;
    row.add[k] = masked ? mask : ZEROS;
    row.add_step[k] = masked ? P.L : 0;
  }
  return row;
}

// One row of state s, left to right: R[cell] = C[cell] + smin over the K predecessors, L lanes at a
// time; out = R at (s, i, 1), c = that row's cost. Stores for each cell what the backward needs:
// (SOFT) the K soft-min weights exp((R - C - v_k) / gamma), 0 where R is +inf (no path passes there,
// so nothing is pushed through it); (hard) the first argmin, the move that gets all of E[cell].
template <bool SOFT, int K, int L, typename T>
void relax_row(double* out, const double* c, int64_t M, const RowMoves& row, T* saved, double gamma,
               double inv_gamma) {
  int64_t offset[K], step[K];
  const double* add[K];
  for (int k = 0; k < K; ++k) offset[k] = row.offset[k], step[k] = row.add_step[k], add[k] = row.add[k];
  for (int64_t j = 0; j < M; ++j, out += L, c += L, saved += (SOFT ? K : 1) * L) {
    int32_t argmin[L];  // (gamma = 0) int8 stores do not vectorise (gcc 12), int32 ones do
#pragma omp simd
    for (int l = 0; l < L; ++l) {
      double v[K];
      for (int k = 0; k < K; ++k) v[k] = out[offset[k] + l] + add[k][j * step[k] + l];
      // the first argmin (all +inf: 0, like torch's argmin), held as a double so that the lanes'
      // selects stay in one vector type
      double best = 0.0, low = v[0];
      for (int k = 1; k < K; ++k) {
        const bool less = v[k] < low;
        best = less ? static_cast<double>(k) : best;
        low = less ? v[k] : low;
      }
      if constexpr (SOFT) {
        // smin = low - gamma log sum_k exp((low - v_k) / gamma): the argmin's term is exactly 1, so
        // only the others need an exp
        const double shift = low == INF ? 0.0 : low;  // all +inf: smin is +inf, never inf - inf
        double e[K];  // exp((low - v_k) / gamma), e[best] = 1
        double total = 1.0;
        if constexpr (K == 1) {
          e[0] = 1.0;
        } else if constexpr (K == 2) {
          const bool second = best == 1.0;
          const double other = exp_nonpositive((shift - (second ? v[0] : v[1])) * inv_gamma);
          e[0] = second ? other : 1.0;
          e[1] = second ? 1.0 : other;
          total += other;
        } else if constexpr (K == 3) {
          const bool first = best == 0.0, third = best == 2.0;
          const double a = exp_nonpositive((shift - (first ? v[1] : v[0])) * inv_gamma);  // the two others
          const double b = exp_nonpositive((shift - (third ? v[1] : v[2])) * inv_gamma);
          e[0] = first ? 1.0 : a;
          e[1] = first ? a : (third ? b : 1.0);
          e[2] = third ? 1.0 : b;
          total += a + b;
        } else {
          total = 0.0;
          for (int k = 0; k < K; ++k) total += e[k] = exp_nonpositive((shift - v[k]) * inv_gamma);
        }
        const double R = c[l] + (low == INF ? INF : shift - gamma * log_positive(total));
        out[l] = R;
        // the reference's weights e_k / total (they sum to 1 whatever R's rounding; see torch_ref._weights)
        const double scale = R < INF ? 1.0 / total : 0.0;
        for (int k = 0; k < K; ++k) saved[k * L + l] = static_cast<T>(e[k] * scale);
      } else {
        out[l] = c[l] + low;
        argmin[l] = static_cast<int32_t>(best);
      }
    }
    if constexpr (!SOFT)
#pragma omp simd
      for (int l = 0; l < L; ++l) saved[l] = static_cast<T>(argmin[l]);
  }
}

#ifdef VTB_VECTORS

// relax_row<true, 3, L> in explicit vectors, with the reference's weights e_k / total stored in one
// of two forms:
// * T = double: three per cell;
// * T = float (packed): two floats per cell, the weights of the two moves that are not the first
//   argmin, with the argmin network's two comparisons in their sign bits; the argmin's own weight
//   is 1 minus the other two (at least 1/3, so exact to float rounding).
template <bool MASKED, int L, typename T>
void relax_row3(double* out, const double* c, int64_t M, const RowMoves& row, T* saved, double gamma,
                double inv_gamma) {
  using namespace vec;
  static_assert(L % W == 0, "whole vectors of lanes");
  constexpr bool PACKED = std::is_same_v<T, float>;
  const int64_t o0 = row.offset[0], o1 = row.offset[1], o2 = row.offset[2];
  const vd ig = splat(inv_gamma), g = splat(gamma);
  for (int64_t j = 0; j < M; ++j, out += L, c += L, saved += (PACKED ? 2 : 3) * L) {
#pragma GCC unroll 4
    for (int h = 0; h < L; h += W) {
      vd v0 = load(out + o0 + h), v1 = load(out + o1 + h), v2 = load(out + o2 + h);
      if constexpr (MASKED) {
        v0 += load(row.add[0] + j * row.add_step[0] + h);
        v1 += load(row.add[1] + j * row.add_step[1] + h);
        v2 += load(row.add[2] + j * row.add_step[2] + h);
      }
      const Sorted3 v = sort3(v0, v1, v2);
      const vi finite = v.low < INF;
      const vd shift = sel(finite, v.low, splat(0.0));  // all +inf: smin is +inf, never inf - inf
      const vd ex = exp_nonpositive((shift - v.x) * ig), ey = exp_nonpositive((shift - v.y) * ig);
      const vd total = 1.0 + (ex + ey);
      vd inverse;
      const vd lg = log_positive(total, inverse);
      const vd cc = load(c + h);
      const vd R = cc + sel(finite, shift - g * lg, splat(INF));
      store(out + h, R);
      if constexpr (PACKED) {  // finite everywhere, so 0 * weight = 0 where E is 0 (R = +inf)
        const vd wx = ex * inverse, wy = ey * inverse;
        store(saved + h, sel(v.b1, -wx, wx));
        store(saved + L + h, sel(v.b2, -wy, wy));
      } else {
        const vd scale = sel(R < INF, inverse, splat(0.0));  // the argmin's weight
        vd w0, w1, w2;
        unsort3(v.b1, v.b2, scale, ex * scale, ey * scale, w0, w1, w2);
        store(saved + h, w0), store(saved + L + h, w1), store(saved + 2 * L + h, w2);
      }
    }
  }
}

// push_row<true, 3, L> for the packed weights of relax_row3.
template <int L>
void push_row3_packed(double* E, const float* saved, int64_t M, const RowMoves& row) {
  using namespace vec;
  const int64_t o0 = row.offset[0], o1 = row.offset[1], o2 = row.offset[2];
  for (int64_t j = M - 1; j >= 0; --j) {
    double* e = E + j * L;
    const float* w = saved + j * 2 * L;
#pragma GCC unroll 4
    for (int h = 0; h < L; h += W) {
      const vd a = load(w + h), b = load(w + L + h);
      const vi b1 = as_int(a) < 0, b2 = as_int(b) < 0;  // the sign bits (-0.0 included)
      const vd wx = as_double(as_int(a) & 0x7fffffffffffffffLL), wy = as_double(as_int(b) & 0x7fffffffffffffffLL);
      vd w0, w1, w2;
      unsort3(b1, b2, (1.0 - wx) - wy, wx, wy, w0, w1, w2);  // the first argmin's: 1 - the others
      const vd el = load(e + h);
      store(e + o0 + h, load(e + o0 + h) + el * w0);
      store(e + o1 + h, load(e + o1 + h) + el * w1);
      store(e + o2 + h, load(e + o2 + h) + el * w2);
    }
  }
}
#endif

// One row of state s, right to left: E[pred] += E[cell] * (weight of pred), or, for gamma = 0, all
// of E[cell] to the first argmin. E at (s, i, 1), saved at the row's first cell.
template <bool SOFT, int K, int L, typename T>
void push_row(double* E, const T* saved, int64_t M, const RowMoves& row) {
  int64_t offset[K];
  for (int k = 0; k < K; ++k) offset[k] = row.offset[k];
#ifdef VTB_VECTORS
  if constexpr (L % vec::W == 0) {  // the same in explicit vectors (gcc turns the hard case into branches)
    using namespace vec;
    for (int64_t j = M - 1; j >= 0; --j) {
      double* e = E + j * L;
      const T* w = saved + j * (SOFT ? K : 1) * L;
#pragma GCC unroll 4
      for (int h = 0; h < L; h += W) {
        const vd el = load(e + h);
        if constexpr (SOFT) {
          for (int k = 0; k < K; ++k) store(e + offset[k] + h, load(e + offset[k] + h) + el * load(w + k * L + h));
        } else {
          typedef int8_t vc __attribute__((vector_size(W)));
          vc c;
          std::memcpy(&c, w + h, sizeof c);
          const vd best = __builtin_convertvector(c, vd);
          for (int k = 0; k < K; ++k)
            store(e + offset[k] + h, load(e + offset[k] + h) + sel(best == static_cast<double>(k), el, splat(0.0)));
        }
      }
    }
    return;
  }
#endif
  for (int64_t j = M - 1; j >= 0; --j) {
    double* e = E + j * L;
    const T* w = saved + j * (SOFT ? K : 1) * L;
    int32_t argmin[L];  // (gamma = 0) widened first, so that the loop below vectorises
    if constexpr (!SOFT)
#pragma omp simd
      for (int l = 0; l < L; ++l) argmin[l] = w[l];
#pragma omp simd
    for (int l = 0; l < L; ++l) {
      const double el = e[l];
      for (int k = 0; k < K; ++k) {
        if constexpr (SOFT) e[offset[k] + l] += el * static_cast<double>(w[k * L + l]);
        else e[offset[k] + l] += argmin[l] == k ? el : 0.0;
      }
    }
  }
}

// CALL with K (moves of a state) or L (lanes of a chunk) as a compile-time constant.
#define VTB_DISPATCH_K(K_, CALL)                  \
  switch (K_) {                                   \
    case 1: { constexpr int K = 1; CALL; break; } \
    case 2: { constexpr int K = 2; CALL; break; } \
    case 3: { constexpr int K = 3; CALL; break; } \
    default: { constexpr int K = 4; CALL; break; } \
  }
#define VTB_DISPATCH_L(L_, CALL)                          \
  switch (L_) {                                           \
    case 1: { constexpr int L = 1; CALL; break; }         \
    case 4: { constexpr int L = 4; CALL; break; }         \
    case 16: { constexpr int L = 16; CALL; break; }       \
    default: { constexpr int L = MAX_LANES; CALL; break; } \
  }

// smin over the final states v (F), with the weights d smin / d final (scalar).
double end_value(const Problem& P, const double* v, double* weight) {
  double low = INF;
  int best = 0;
  for (int f = 0; f < P.rec.F; ++f)
    if (v[f] < low) { low = v[f]; best = f; }
  if (!P.soft()) {  // an unreachable end cell (+inf) pushes nothing, as in the soft case
    for (int f = 0; f < P.rec.F; ++f) weight[f] = f == best && low < INF ? 1.0 : 0.0;
    return low;
  }
  const double shift = std::isinf(low) ? 0.0 : low;
  double total = 0.0;
  for (int f = 0; f < P.rec.F; ++f) total += weight[f] = std::exp(-(v[f] - shift) / P.gamma);
  for (int f = 0; f < P.rec.F; ++f) weight[f] = low < INF ? weight[f] / total : 0.0;  // unreachable: pushes nothing
  return shift - P.gamma * std::log(total);
}

// The value of every pair of the chunk whose end row is i, and its seed (d value / d final states).
void end_values(const Problem& P, const double* R, int64_t i, int64_t b0, int nb, double* value, double* seed) {
  for (int l = 0; l < nb; ++l) {
    const int64_t b = b0 + l;
    if (P.n_len[b] != i) continue;
    double v[MAX_STATES];
    for (int f = 0; f < P.rec.F; ++f) v[f] = R[P.at(P.rec.finals[f], i, P.m_len[b]) + l];
    value[b] = end_value(P, v, seed + b * P.rec.F);
  }
}

template <bool SOFT, int L, typename scalar_t, typename T>
void forward_chunk(const Problem& P, const scalar_t* cost, int64_t b0, int nb, Scratch& w, T* saved,
                   double* value, double* seed) {
  double* R = w.rows.data();
  for (int s = 0; s < P.S; ++s)  // the boundary row: 0 at the corner start cell, else +inf
    for (int64_t j = 0; j <= P.M; ++j)
      for (int l = 0; l < L; ++l) R[P.at(s, 0, j) + l] = P.rec.start[s] == CORNER && j == 0 ? 0.0 : INF;
  end_values(P, R, 0, b0, nb, value, seed);
  const double* mask = P.col_mask ? w.mask.data() : nullptr;
  for (int64_t i = 1; i <= P.N; ++i) {
    const int64_t row_of_cost = P.cost_row(i - 1);
    if (row_of_cost >= 0) load_row(P, cost, b0, nb, row_of_cost, w.C.data());
    for (int s = 0; s < P.S; ++s) {
      const int start = P.rec.start[s];  // the boundary column
      const bool zero = start == LEFT || (start == LEFT_FIRST && i == 1);
      for (int l = 0; l < L; ++l) R[P.at(s, i, 0) + l] = zero ? 0.0 : INF;
      const RowMoves row = row_moves(P, s, i, mask);
      const double* c = row_of_cost >= 0 ? w.C.data() + s * P.M * L : w.fill_row.data();
      T* out = saved + P.saved_base[s] + (i - 1) * P.M * P.per_cell[s] * L;
#ifdef VTB_VECTORS
      if constexpr (SOFT && L % vec::W == 0)
        if (P.rec.K[s] == 3) {  // (float T: every state is here, see Problem::packable)
          const bool masked = row.add_step[0] || row.add_step[1] || row.add_step[2];
          if (masked) relax_row3<true, L>(R + P.at(s, i, 1), c, P.M, row, out, P.gamma, P.inv_gamma);
          else relax_row3<false, L>(R + P.at(s, i, 1), c, P.M, row, out, P.gamma, P.inv_gamma);
          continue;
        }
#endif
      if constexpr (!std::is_same_v<T, float>)  // (float weights: relax_row3 only)
        VTB_DISPATCH_K(P.rec.K[s], (relax_row<SOFT, K, L>(R + P.at(s, i, 1), c, P.M, row, out, P.gamma, P.inv_gamma)));
    }
    end_values(P, R, i, b0, nb, value, seed);
  }
}

// The forward order reversed, two rows of E at a time: when row i is swept, every successor of its
// cells has pushed, so the row is final and goes straight to grad (B, S, N, M).
template <bool SOFT, int L, typename scalar_t, typename T>
void backward_chunk(const Problem& P, scalar_t* grad, int64_t b0, int nb, Scratch& w, const T* saved,
                    const double* seed) {
  double* E = w.rows.data();
  std::fill(w.rows.begin(), w.rows.end(), 0.0);
  for (int64_t i = P.N; i >= 1; --i) {
    for (int l = 0; l < nb; ++l)
      if (P.n_len[b0 + l] == i)
        for (int f = 0; f < P.rec.F; ++f) E[P.at(P.rec.finals[f], i, P.m_len[b0 + l]) + l] = seed[(b0 + l) * P.rec.F + f];
    for (int s = P.S - 1; s >= 0; --s) {
      const RowMoves row = row_moves(P, s, i, nullptr);
      const T* in = saved + P.saved_base[s] + (i - 1) * P.M * P.per_cell[s] * L;
#ifdef VTB_VECTORS
      if constexpr (std::is_same_v<T, float> && L % vec::W == 0)
        if (P.rec.K[s] == 3) {
          push_row3_packed<L>(E + P.at(s, i, 1), in, P.M, row);
          continue;
        }
#endif
      if constexpr (!std::is_same_v<T, float>)
        VTB_DISPATCH_K(P.rec.K[s], (push_row<SOFT, K, L>(E + P.at(s, i, 1), in, P.M, row)));
    }
    const int64_t row_of_cost = P.cost_row(i - 1);
    for (int64_t s = 0; s < P.S; ++s) {  // row i is final: out (without the boundary column), then zeroed
      double* Er = E + P.at(s, i, 0);      // for row i - 2
      if (row_of_cost >= 0) store_row(P, Er + L, b0, nb, s, row_of_cost, grad);
      std::fill(Er, Er + (P.M + 1) * L, 0.0);
    }
  }
}

// fill: none for a cost that is the grid, else the value of the grid cells that the interleaved
// cost leaves out (see Problem::interleaved)
Problem make_problem(const at::Tensor& cost, const std::vector<int64_t>& code, double gamma, const at::Tensor& n_len,
                     const at::Tensor& m_len, const at::Tensor& col_mask, std::optional<double> fill) {
  TORCH_CHECK(cost.dim() == 4 && cost.device().is_cpu() && cost.is_contiguous(), "vtbench cpu: cost must be a contiguous CPU (B, S, N, M) tensor");
  TORCH_CHECK(n_len.scalar_type() == at::kLong && m_len.scalar_type() == at::kLong, "vtbench cpu: lengths must be int64");
  TORCH_CHECK(gamma >= 0.0, "vtbench cpu: gamma must be >= 0");
  TORCH_CHECK(!fill || std::isfinite(*fill), "vtbench cpu: the fill of an interleaved grid must be finite");
  const int64_t grow = fill ? 2 : 1, extra = fill ? 1 : 0;
  Problem P{decode(code), cost.size(0), cost.size(1), grow * cost.size(2) + extra, grow * cost.size(3) + extra,
            lanes_for(cost.size(0)), gamma, gamma > 0.0 ? 1.0 / gamma : 0.0, n_len.data_ptr<int64_t>(),
            m_len.data_ptr<int64_t>(), nullptr, {}, {}};
  P.Nc = cost.size(2), P.Mc = cost.size(3), P.interleaved = fill.has_value(), P.fill = fill.value_or(0.0);
  TORCH_CHECK(P.rec.S == P.S, "vtbench cpu: the cost has ", P.S, " states, the recursion ", P.rec.S);
  TORCH_CHECK(n_len.device().is_cpu() && m_len.device().is_cpu() && n_len.is_contiguous() && m_len.is_contiguous() &&
                  n_len.numel() == P.B && m_len.numel() == P.B,
              "vtbench cpu: n_len and m_len must be contiguous CPU tensors of B = ", P.B, " lengths");
  for (int64_t b = 0; b < P.B; ++b)  // the kernels index the grid with them: never beyond it
    TORCH_CHECK(P.n_len[b] >= 1 && P.n_len[b] <= P.N && P.m_len[b] >= 1 && P.m_len[b] <= P.M,
                "vtbench cpu: pair ", b, " has lengths (", P.n_len[b], ", ", P.m_len[b], "), outside the grid's 1..",
                P.N, " x 1..", P.M);
  if (col_mask.numel() > 0) {
    TORCH_CHECK(col_mask.scalar_type() == at::kBool && col_mask.is_contiguous() && col_mask.numel() == P.B * P.M,
                "vtbench cpu: col_mask must be a contiguous (B, M) bool tensor");
    P.col_mask = col_mask.data_ptr<bool>();
  }
  return P;
}

// What the forward stores for each chunk: first argmins (int8) for gamma = 0; for gamma > 0 the
// soft-min weights, packed in float32 where float32_weights asks for it and relax_row3 can pack them
// (float32 weights of the other kinds would cost the gradient accuracy), else float64.
at::ScalarType saved_type(const Problem& P, bool float32_weights) {
  return !P.soft() ? at::kChar : float32_weights && P.packable() ? at::kFloat : at::kDouble;
}

// CALL with SOFT, T (the saved type) and L (lanes) as compile-time constants; packed float32 weights
// exist for 16 and 24 lanes only.
#ifdef VTB_VECTORS
#define VTB_DISPATCH_FLOAT(L_, CALL)                                  \
  if ((L_) == 16) { constexpr int L = 16; CALL; }                     \
  else { constexpr int L = 24; CALL; }
#else
#define VTB_DISPATCH_FLOAT(L_, CALL) TORCH_CHECK(false, "vtbench cpu: no packed weights in this build");
#endif
#define VTB_DISPATCH(TYPE, L_, CALL)                                                                           \
  switch (TYPE) {                                                                                                \
    case at::kChar: { using T = int8_t; constexpr bool SOFT = false; VTB_DISPATCH_L(L_, CALL); break; }         \
    case at::kFloat: { using T = float; constexpr bool SOFT = true; VTB_DISPATCH_FLOAT(L_, CALL); break; }      \
    default: { using T = double; constexpr bool SOFT = true; VTB_DISPATCH_L(L_, CALL); break; }                 \
  }

// Memory. First touches of fresh memory (page faults, in which the kernel also zeroes the page) cost
// here about as much as the DP itself (measured 1.4 us per 4 KiB page, 0.35 ms per MB: 10 ms for the
// 25 MB of a forward of 32 pairs of 256 x 256 that took 8 ms), and the buffers this kernel writes
// (what the forward saves, the gradient) are large and short-lived: autograd lets go of them soon. So they come from a
// small pool of tensors that this module keeps: a pooled tensor that nobody else holds any more (its
// and its storage's reference counts are 1) is handed out again, as a view of its first elements;
// else a fresh one is allocated (advised into 2 MiB pages, a quarter of the faults' cost) and pooled.
// The pool keeps at most POOL_SIZE tensors and POOL_BYTES in all (larger buffers are not pooled);
// `release_memory` empties it.
constexpr size_t POOL_SIZE = 10;
constexpr int64_t POOL_BYTES = int64_t{256} << 20;

void advise_huge_pages(const at::Tensor& t) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t HUGE_PAGE = uintptr_t{1} << 21;
  const uintptr_t begin = reinterpret_cast<uintptr_t>(t.data_ptr()), end = begin + t.nbytes();
  const uintptr_t first = (begin + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1), last = end & ~(HUGE_PAGE - 1);
  if (last >= first + 2 * HUGE_PAGE) madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
#else
  (void)t;
#endif
}

struct Pool {
  std::mutex mutex;
  std::vector<at::Tensor> tensors;  // flat, contiguous
};
Pool& pool() {
  static Pool* instance = new Pool;  // never destroyed: no tensor is freed after Python has gone
  return *instance;
}

bool unused(const at::Tensor& t) { return t.use_count() == 1 && t.storage().use_count() == 1; }

// An uninitialised contiguous tensor of these sizes, from the pool where it can.
at::Tensor pooled_empty(at::IntArrayRef sizes, at::ScalarType type) {
  const int64_t numel = c10::multiply_integers(sizes);
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mutex);
  at::Tensor* best = nullptr;  // the smallest unused one that fits without wasting half of it
  for (at::Tensor& t : p.tensors)
    if (t.scalar_type() == type && t.numel() >= numel && t.numel() <= 2 * numel + 4096 && unused(t) &&
        (!best || t.numel() < best->numel()))
      best = &t;
  if (best) return best->narrow(0, 0, numel).view(sizes);
  at::Tensor fresh = at::empty({std::max<int64_t>(numel, 1)}, at::TensorOptions().dtype(type));
  advise_huge_pages(fresh);
  const auto pooled_bytes = [&] {
    int64_t total = 0;
    for (const at::Tensor& t : p.tensors) total += t.nbytes();
    return total;
  };
  const int64_t bytes = static_cast<int64_t>(fresh.nbytes());
  if (bytes > POOL_BYTES) return fresh.narrow(0, 0, numel).view(sizes);
  while (!p.tensors.empty() && (p.tensors.size() >= POOL_SIZE || pooled_bytes() + bytes > POOL_BYTES)) {
    // make room: forget an unused tensor (its memory goes back) if any, else the oldest
    auto it = std::find_if(p.tensors.begin(), p.tensors.end(), unused);
    p.tensors.erase(it != p.tensors.end() ? it : p.tensors.begin());
  }
  p.tensors.push_back(fresh);
  return fresh.narrow(0, 0, numel).view(sizes);
}

// Empty the pool (memory that nobody else holds goes back to the system).
void release_memory() {
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mutex);
  p.tensors.clear();
}

// f(chunk, scratch) for every chunk, in parallel: at::parallel_for starts one task per thread (only
// one, the caller, where the whole batch is under ~2^18 cell-lanes, ~1 ms: waking threads would cost
// more), and the tasks take chunks from a shared counter, a few (~0.1 ms of work) at a time, so that
// a thread that the OS deschedules on a busy machine holds up the others for no longer than those.
// Every chunk is computed the same whichever thread takes it.
template <typename F>
void for_chunks(const Problem& P, int64_t chunks, F&& f) {
  const int64_t work = std::max<int64_t>(1, P.S * P.N * P.M * P.L);  // cell-lanes per chunk
  const int64_t take = std::max<int64_t>(1, (int64_t{1} << 15) / work);
  const int64_t tasks = chunks * work < (int64_t{1} << 18) ? 1 : std::min<int64_t>(at::get_num_threads(), (chunks + take - 1) / take);
  std::atomic<int64_t> next{0};
  at::parallel_for(0, tasks, 1, [&](int64_t, int64_t) {
    Scratch w(P);
    for (int64_t first = next.fetch_add(take); first < chunks; first = next.fetch_add(take))
      for (int64_t chunk = first; chunk < std::min(chunks, first + take); ++chunk) f(chunk, w);
  });
}

// cost (B, S, N, M) -> value (B,) float64, saved (chunks, saved_size) and the end seeds (B, F) float64
std::vector<at::Tensor> forward(const at::Tensor& cost, const std::vector<int64_t>& code, double gamma,
                                const at::Tensor& n_len, const at::Tensor& m_len, const at::Tensor& col_mask,
                                bool float32_weights, std::optional<double> fill) {
  Problem P = make_problem(cost, code, gamma, n_len, m_len, col_mask, fill);
  const int64_t chunks = (P.B + P.L - 1) / P.L;
  const at::ScalarType type = saved_type(P, float32_weights);
  P.lay_out(type);
  auto value = at::empty({P.B}, cost.options().dtype(at::kDouble));
  auto seed = at::empty({P.B, P.rec.F}, cost.options().dtype(at::kDouble));
  auto saved = pooled_empty({chunks, P.saved_size()}, type);
  double* value_ptr = value.data_ptr<double>();
  double* seed_ptr = seed.data_ptr<double>();
  AT_DISPATCH_FLOATING_TYPES(cost.scalar_type(), "vtbench_dp_cpu_forward", [&] {
    const scalar_t* cost_ptr = cost.data_ptr<scalar_t>();
    for_chunks(P, chunks, [&](int64_t chunk, Scratch& w) {
      const int64_t b0 = chunk * P.L;
      const int nb = static_cast<int>(std::min<int64_t>(P.L, P.B - b0));
      start_chunk(P, b0, nb, w);
      VTB_DISPATCH(type, P.L, (forward_chunk<SOFT, L>(P, cost_ptr, b0, nb, w,
                                                      static_cast<T*>(saved.data_ptr()) + chunk * P.saved_size(),
                                                      value_ptr, seed_ptr)));
    });
  });
  return {value, saved, seed};
}

// The expected alignment E = d value / d cost, (B, S, N, M) in the cost's dtype.
at::Tensor backward(const at::Tensor& cost, const at::Tensor& saved, const at::Tensor& seed,
                    const std::vector<int64_t>& code, double gamma, const at::Tensor& n_len, const at::Tensor& m_len,
                    const at::Tensor& col_mask, std::optional<double> fill) {
  Problem P = make_problem(cost, code, gamma, n_len, m_len, col_mask, fill);
  const int64_t chunks = (P.B + P.L - 1) / P.L;
  const at::ScalarType type = saved.scalar_type();
  P.lay_out(type);
  TORCH_CHECK(saved.is_contiguous() && saved.numel() == chunks * P.saved_size() &&
                  (P.soft() ? type == at::kDouble || (type == at::kFloat && P.packable()) : type == at::kChar) &&
                  seed.scalar_type() == at::kDouble && seed.is_contiguous() && seed.numel() == P.B * P.rec.F,
              "vtbench cpu: saved does not come from this cost's forward");
  auto grad = pooled_empty(cost.sizes(), cost.scalar_type());
  const double* seed_ptr = seed.data_ptr<double>();
  AT_DISPATCH_FLOATING_TYPES(cost.scalar_type(), "vtbench_dp_cpu_backward", [&] {
    scalar_t* grad_ptr = grad.data_ptr<scalar_t>();
    for_chunks(P, chunks, [&](int64_t chunk, Scratch& w) {
      const int64_t b0 = chunk * P.L;
      const int nb = static_cast<int>(std::min<int64_t>(P.L, P.B - b0));
      VTB_DISPATCH(type, P.L, (backward_chunk<SOFT, L>(P, grad_ptr, b0, nb, w,
                                                       static_cast<const T*>(saved.data_ptr()) + chunk * P.saved_size(),
                                                       seed_ptr)));
    });
  });
  return grad;
}

// ---- S2DTW's local smoothing (variants.smooth_cost; its torch form there is the reference) ----
//
//   S[i,j] = d[i,j] + smin_gs(d[i,j-1], d[i-1,j], d[i-1,j-1]) over the neighbours that exist,
//   the three missing neighbours of (0, 0) counting as 0;
//   w_k[i,j] = d S[i,j] / d (neighbour k), so that  d loss / d d[p] = g[p] + sum over the cells q that
//   have p as neighbour k of w_k[q] g[q].
// Not a recursion: every cell at once, a row of one pair (its M cells) per vector loop.

// One cell of the smoothing: x + smin_gs(a, u, c) (left, up, diagonal) and d / d (a, u, c) in w*.
// (SOFT: gs > 0, a compile-time constant so that the loops below have no branch and vectorise)
template <bool SOFT>
inline double smooth_cell(double x, double a, double u, double c, double gs, double inv, double& wa, double& wu,
                          double& wc) {
  const double low = std::min(a, std::min(u, c));  // finite: every cell has a neighbour
  if constexpr (SOFT) {
    const double ea = exp_nonpositive((low - a) * inv), eu = exp_nonpositive((low - u) * inv),
                 ec = exp_nonpositive((low - c) * inv);
    const double total = ea + eu + ec, scale = 1.0 / total;  // total >= 1
    wa = ea * scale, wu = eu * scale, wc = ec * scale;
    return x + (low - gs * log_positive(total));
  } else {
    wa = a == low ? 1.0 : 0.0;  // the first argmin, as torch.argmin
    wu = wa == 0.0 && u == low ? 1.0 : 0.0;
    wc = wa == 0.0 && wu == 0.0 ? 1.0 : 0.0;
    return x + low;
  }
}

// The smoothing runs over blocks of G pairs, each block's cells flat (pair, i, j) and contiguous as
// in the tensors, so that every cell reads its neighbours at the same offsets (-1, -M, -M-1) and
// one vector loop covers them all, reading and writing the tensors directly. Where a neighbour does
// not exist (j = 0, i = 0) the offset lands on another row or pair: per-cell masks, the same for
// every block, select +inf instead (where add_* is +inf; selected, not added: a NaN in the other
// pair must not leak in) or, at the origins, 0 for all three (origin).
constexpr int64_t SMOOTH_G = 8;  // pairs per block: G N M cells, a whole number of 8-lane vectors
struct SmoothMasks {
  int64_t N, M;
  std::vector<double> add_l, add_u, add_d;  // (G N M): 0, or +inf where that neighbour is missing (a mask)
  std::vector<int64_t> origin;              // (G N M): -1 at (0, 0), else 0
  SmoothMasks(int64_t N_, int64_t M_) : N(N_), M(M_) {
    const int64_t cells = SMOOTH_G * N * M;
    add_l.resize(cells), add_u.resize(cells), add_d.resize(cells), origin.resize(cells);
    for (int64_t k = 0; k < cells; ++k) {
      const int64_t i = (k / M) % N, j = k % M;
      add_l[k] = j > 0 ? 0.0 : INF, add_u[k] = i > 0 ? 0.0 : INF, add_d[k] = i > 0 && j > 0 ? 0.0 : INF;
      origin[k] = i == 0 && j == 0 ? -1 : 0;
    }
  }
};

// Pairs b0..b1: S and the weights (3 planes wl, wu, wd). Each block is first widened to doubles
// behind M + 1 cells of padding (masked, never used), so that no read leaves the buffer.
template <bool SOFT, typename scalar_t>
void smooth_pairs(const scalar_t* d, scalar_t* S, scalar_t* wl, scalar_t* wu, scalar_t* wd, const SmoothMasks& mk,
                  double gs, int64_t b0, int64_t b1) {
  const int64_t M = mk.M, NM = mk.N * mk.M, pad = M + 1;
  const double inv = gs > 0.0 ? 1.0 / gs : 0.0;
  std::vector<double> buffer(pad + SMOOTH_G * NM, 0.0);
  const double* x = buffer.data() + pad;
  const double *al = mk.add_l.data(), *au = mk.add_u.data(), *ad = mk.add_d.data();
  const int64_t* zo = mk.origin.data();
  for (int64_t first = b0; first < b1; first += SMOOTH_G) {
    const int64_t cells = std::min(SMOOTH_G, b1 - first) * NM, o = first * NM;
    double* xw = buffer.data() + pad;
#pragma omp simd
    for (int64_t k = 0; k < cells; ++k) xw[k] = static_cast<double>(d[o + k]);
    int64_t k0 = 0;
#ifdef VTB_VECTORS
    if constexpr (SOFT) {  // explicit vectors: the exp and log of namespace vec, one division
      using namespace vec;
      const vd ig = splat(inv), g = splat(gs), zero = splat(0.0);
      for (; k0 + W <= cells; k0 += W) {
        const int64_t k = k0;
        vi z;
        std::memcpy(&z, zo + k, sizeof z);
        const vd xx = load(x + k);
        const vd inf = splat(INF);  // a missing neighbour is +inf, selected (NaN + inf would be NaN)
        const vd va = sel(z, zero, sel(load(al + k) < INF, load(x + k - 1), inf)),
                 vu = sel(z, zero, sel(load(au + k) < INF, load(x + k - M), inf)),
                 vc = sel(z, zero, sel(load(ad + k) < INF, load(x + k - M - 1), inf));
        const Sorted3 v = sort3(va, vu, vc);  // low is finite: every cell has a neighbour
        const vd ex = exp_nonpositive((v.low - v.x) * ig), ey = exp_nonpositive((v.low - v.y) * ig);
        vd inverse, w0, w1, w2;
        const vd lg = log_positive(1.0 + (ex + ey), inverse);
        unsort3(v.b1, v.b2, inverse, ex * inverse, ey * inverse, w0, w1, w2);
        store(S + o + k, xx + (v.low - g * lg));
        store(wl + o + k, w0), store(wu + o + k, w1), store(wd + o + k, w2);
      }
    }
#endif
#pragma omp simd
    for (int64_t k = k0; k < cells; ++k) {
      const bool at_origin = zo[k] != 0;
      const double a = at_origin ? 0.0 : al[k] < INF ? x[k - 1] : INF, u = at_origin ? 0.0 : au[k] < INF ? x[k - M] : INF,
                   c = at_origin ? 0.0 : ad[k] < INF ? x[k - M - 1] : INF;
      double ea, eu, ec;
      S[o + k] = static_cast<scalar_t>(smooth_cell<SOFT>(x[k], a, u, c, gs, inv, ea, eu, ec));
      wl[o + k] = static_cast<scalar_t>(ea), wu[o + k] = static_cast<scalar_t>(eu), wd[o + k] = static_cast<scalar_t>(ec);
    }
  }
}

// Rows r0..r1 of the smoothing's backward: gd = g + what the cells right, below and diagonally
// below send back to their neighbour.
template <typename scalar_t>
void smooth_back_rows(const scalar_t* g, const scalar_t* w, scalar_t* gd, int64_t plane, int64_t N, int64_t M,
                      int64_t r0, int64_t r1) {
  const scalar_t *wl = w, *wu = w + plane, *wd = w + 2 * plane;  // to the left neighbour, the upper, the diagonal
  for (int64_t r = r0; r < r1; ++r) {
    const bool below = r % N < N - 1;  // row i + 1 exists
    const int64_t o = r * M, ob = below ? o + M : o;  // (ob read only where below)
#pragma omp simd
    for (int64_t j = 0; j < M; ++j) {
      const bool right = j < M - 1;
      const int64_t jr = right ? j + 1 : j;
      double total = static_cast<double>(g[o + j]);
      total += right ? static_cast<double>(wl[o + jr]) * static_cast<double>(g[o + jr]) : 0.0;
      total += below ? static_cast<double>(wu[ob + j]) * static_cast<double>(g[ob + j]) : 0.0;
      total += below && right ? static_cast<double>(wd[ob + jr]) * static_cast<double>(g[ob + jr]) : 0.0;
      gd[o + j] = static_cast<scalar_t>(total);
    }
  }
}

// Rows (or pairs) of `cells` cells per task: ~16k cells, so that small batches stay on the calling thread.
int64_t smooth_grain(int64_t cells) { return std::max<int64_t>(1, (int64_t{1} << 14) / std::max<int64_t>(cells, 1)); }

// cost (B, N, M) contiguous -> S (B, N, M) and the weights (3, B, N, M) in the cost's dtype
// (neighbours left, up, diagonal; for gs = 0 the first argmin's indicator).
std::vector<at::Tensor> smooth_forward(const at::Tensor& cost, double gs) {
  TORCH_CHECK(cost.dim() == 3 && cost.device().is_cpu() && cost.is_contiguous(), "vtbench cpu: smoothing takes a contiguous CPU (B, N, M) tensor");
  TORCH_CHECK(gs >= 0.0, "vtbench cpu: smooth_gamma must be >= 0");
  const int64_t B = cost.size(0), N = cost.size(1), M = cost.size(2);
  auto out = pooled_empty(cost.sizes(), cost.scalar_type());
  auto weights = pooled_empty({3, B, N, M}, cost.scalar_type());
  AT_DISPATCH_FLOATING_TYPES(cost.scalar_type(), "vtbench_smooth_forward", [&] {
    const scalar_t* d = cost.data_ptr<scalar_t>();
    scalar_t* S = out.data_ptr<scalar_t>();
    scalar_t* w = weights.data_ptr<scalar_t>();
    const SmoothMasks masks(N, M);
    const int64_t plane = B * N * M, blocks = (B + SMOOTH_G - 1) / SMOOTH_G;
    at::parallel_for(0, blocks, smooth_grain(SMOOTH_G * N * M), [&](int64_t k0, int64_t k1) {
      const int64_t b0 = k0 * SMOOTH_G, b1 = std::min(B, k1 * SMOOTH_G);
      if (gs > 0.0) smooth_pairs<true>(d, S, w, w + plane, w + 2 * plane, masks, gs, b0, b1);
      else smooth_pairs<false>(d, S, w, w + plane, w + 2 * plane, masks, gs, b0, b1);
    });
  });
  return {out, weights};
}

// d loss / d cost from grad = d loss / d S (B, N, M) and the forward's weights.
at::Tensor smooth_backward(const at::Tensor& grad, const at::Tensor& weights) {
  TORCH_CHECK(grad.dim() == 3 && grad.device().is_cpu() && grad.is_contiguous(), "vtbench cpu: smoothing's gradient must be a contiguous CPU (B, N, M) tensor");
  TORCH_CHECK(weights.is_contiguous() && weights.scalar_type() == grad.scalar_type() && weights.dim() == 4 &&
                  weights.size(0) == 3 && weights.numel() == 3 * grad.numel(),
              "vtbench cpu: the weights do not come from this gradient's smoothing");
  const int64_t B = grad.size(0), N = grad.size(1), M = grad.size(2);
  auto out = pooled_empty(grad.sizes(), grad.scalar_type());
  AT_DISPATCH_FLOATING_TYPES(grad.scalar_type(), "vtbench_smooth_backward", [&] {
    const scalar_t* g = grad.data_ptr<scalar_t>();
    const scalar_t* w = weights.data_ptr<scalar_t>();
    scalar_t* gd = out.data_ptr<scalar_t>();
    at::parallel_for(0, B * N, smooth_grain(M), [&](int64_t r0, int64_t r1) {
      smooth_back_rows(g, w, gd, B * N * M, N, M, r0, r1);
    });
  });
  return out;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "vtbench's CPU DP kernel (see vtbench/align/backends/cpu.py)";
  m.def("forward", &forward, "value (B,), the saved weights or argmins, and the end seeds of a recursion over cost (B, S, N, M)");
  m.def("backward", &backward, "the expected alignment d value / d cost, (B, S, N, M)");
  m.def("smooth_forward", &smooth_forward, "S2DTW's smoothing of cost (B, N, M): S and the soft-min weights (3, B, N, M)");
  m.def("smooth_backward", &smooth_backward, "d loss / d cost from d loss / d S and the smoothing's weights");
  m.def("lanes", &lanes_for, "pairs per SIMD chunk for a batch size");
  m.def("release_memory", &release_memory, "free the pooled blocks of saved weights");
}
