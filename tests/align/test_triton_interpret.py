"""The triton backend against the torch reference, through the public API.

Without a GPU the kernels run on CPU tensors in Triton's interpreter: TRITON_INTERPRET=1 must be set
before triton is first imported in the process (Triton decides at decoration time, its own library
included), so this module sets it first thing; it stays set for the rest of the session (no other
CPU code uses Triton). Should triton have been imported earlier (another test module), the tests
here run in a fresh pytest process instead. Shapes are tiny: the interpreter runs every kernel
step in numpy. With a GPU the same tests run the compiled kernels on CUDA, and the large-shape
tests at the end run too.
"""
import importlib
import os
import subprocess
import sys
import warnings

import numpy as np
import torch

if not torch.cuda.is_available() and __name__ != "__main__":
    os.environ["TRITON_INTERPRET"] = "1"

import pytest  # noqa: E402

triton = pytest.importorskip("triton")

import vtbench.align as va  # noqa: E402
from vtbench.align import backends  # noqa: E402
from vtbench.align.backends import triton_dp  # noqa: E402

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
TRITON_INTERPRETED = not isinstance(triton.language.standard.max, triton.runtime.JITFunction)
if DEVICE.type == "cpu" and TRITON_INTERPRETED and not triton_dp._INTERPRETED:  # imported before the env var
    importlib.reload(triton_dp)
TRITON_CAME_FIRST = DEVICE.type == "cpu" and not TRITON_INTERPRETED
COMPILED = DEVICE.type == "cuda" and not triton_dp._INTERPRETED
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's log(0), inf - inf in masked lanes


@pytest.fixture(autouse=True)
def interpreter_in_this_process(request):
    if TRITON_CAME_FIRST and request.node.name != "test_in_a_fresh_process_if_triton_came_first":
        pytest.skip("triton was imported before TRITON_INTERPRET=1 was set: run in a fresh process")


@pytest.mark.skipif(not TRITON_CAME_FIRST, reason="the tests run in this process")
def test_in_a_fresh_process_if_triton_came_first():
    env = dict(os.environ, TRITON_INTERPRET="1")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-4000:]


def both_backends(kernel, cost, extra=(), **kwargs):
    """Values and gradients (w.r.t. cost and each tensor in ``extra``) from torch and triton."""
    out = {}
    for backend in ("torch", "triton"):
        leaves = [cost.detach().clone().requires_grad_(True)] + [e.detach().clone().requires_grad_(True) for e in extra]
        value = kernel(*leaves, backend=backend, **kwargs)
        weights = torch.arange(1, value.numel() + 1, dtype=value.dtype, device=value.device).reshape(value.shape)
        grads = torch.autograd.grad((value * weights).sum(), leaves)  # distinct weights: no cancelling pairs
        out[backend] = (value.detach(), grads)
    return out["torch"], out["triton"]


def assert_same(ref, got, rtol, atol):
    (v_ref, g_ref), (v_got, g_got) = ref, got
    assert v_got.dtype == v_ref.dtype and v_got.shape == v_ref.shape
    torch.testing.assert_close(v_got, v_ref, rtol=rtol, atol=atol)
    for a, b in zip(g_got, g_ref):
        assert not torch.isnan(a).any()
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol)


def tolerance(dtype):
    """float64: float64 throughout, ulps apart. float32: float64 R, float32 exp/log (module docstring)."""
    return (1e-10, 1e-10) if dtype == torch.float64 else (1e-5, 2e-6)


def rand(*shape, dtype=torch.float64, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=g, dtype=torch.float64) * scale).to(dtype=dtype, device=DEVICE)


def lengths(*values):
    return torch.tensor(values, device=DEVICE)


VARIANTS = ["soft_dtw", "s2dtw", "otam", "drop_dtw"]


def variant_case(name, dtype):
    """Every variant with per-pair lengths: (kernel, cost, extra tensors with gradients, kwargs)."""
    if name == "soft_dtw":
        return va.soft_dtw, rand(3, 6, 5, dtype=dtype), (), dict(x_lengths=lengths(6, 2, 4), y_lengths=lengths(5, 5, 1))
    if name == "s2dtw":
        return va.s2dtw, rand(2, 3, 4, dtype=dtype) - 0.5, (), dict(x_lengths=lengths(3, 2), y_lengths=lengths(4, 2))
    if name == "otam":
        return va.otam, rand(3, 5, 4, dtype=dtype), (), dict(x_lengths=lengths(5, 3, 1), y_lengths=lengths(4, 2, 3))
    drop = rand(3, 6, dtype=dtype, seed=1)
    drop[0, 2] = float("inf")  # a clip that may not be dropped
    kwargs = dict(x_lengths=lengths(4, 2, 3), y_lengths=lengths(6, 5, 3))
    return va.drop_dtw, rand(3, 4, 6, dtype=dtype), (drop,), kwargs


def check_variant(name, dtype, gamma):
    kernel, cost, extra, kwargs = variant_case(name, dtype)
    ref, got = both_backends(lambda *a, **kw: kernel(*a, gamma=gamma, **kw), cost, extra=extra, **kwargs)
    assert_same(ref, got, *tolerance(dtype))


def test_available_here_but_not_on_other_devices():
    assert triton_dp.available(DEVICE)
    assert backends.select("triton", DEVICE) is triton_dp
    assert not triton_dp.available(torch.device("meta"))


def test_a_recursion_of_three_states_runs_on_torch_under_auto_and_is_refused_by_name():
    from vtbench.align.recursions import Move, Recursion

    three = Recursion("three", tuple((va.recursions.Move(0, 1, 1), Move(s, 0, 1)) for s in range(3)),
                      ("corner", None, None), (0, 1, 2))
    assert "at most 2 states, and this one has 3" in triton_dp.unsupported(three)
    assert triton_dp.unsupported(va.recursions.DROP_DTW) is None
    with pytest.raises(ValueError, match="backend='triton' cannot run recursion 'three': it runs recursions of at most"):
        backends.select("triton", DEVICE, three)
    cuda = torch.device("cuda")  # selection only reads the device's type: no GPU needed to check it
    assert backends.select("auto", cuda, va.recursions.DROP_DTW) is triton_dp  # auto picks triton on CUDA,
    assert backends.select("auto", cuda, three) is backends.load("torch")  # and torch for what triton cannot run


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("gamma", [0.7, 0.0])
@pytest.mark.parametrize("name", VARIANTS)
def test_every_variant_with_lengths_matches_torch(name, gamma, dtype):
    check_variant(name, dtype, gamma)


def test_published_oracle_values():
    rs = np.random.RandomState(0)
    X, Y = rs.randn(5, 4), rs.randn(6, 4)
    C = torch.tensor(((X[:, None] - Y[None]) ** 2).sum(-1), device=DEVICE)
    assert va.dtw(C, backend="triton").item() == pytest.approx(63.94357673585416, abs=1e-10)
    for gamma, value in {0.1: 63.940001676610855, 1: 62.96537826289487, 100: -555.7120356458902}.items():
        assert va.soft_dtw(C, gamma, backend="triton").item() == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize("gamma", [0.3, 0.0])
def test_band_puts_inf_costs_without_nan(gamma):
    cost = rand(2, 7, 5)
    ref, got = both_backends(lambda c, **kw: va.soft_dtw(c, gamma, **kw), cost, bandwidth=2)
    assert_same(ref, got, 1e-10, 1e-10)
    assert torch.isfinite(got[0]).all()


def test_hard_ties_go_to_the_first_move_as_in_torch():
    """Integer costs tie everywhere: E at gamma = 0 is the path of the first argmin, as torch's."""
    g = torch.Generator().manual_seed(3)
    cost = torch.randint(0, 2, (3, 6, 6), generator=g).double().to(DEVICE)
    for kernel in (va.soft_dtw, va.otam):
        ref, got = both_backends(lambda c, **kw: kernel(c, 0.0, **kw), cost)
        assert_same(ref, got, 0, 0)
    drop = torch.ones(3, 6, dtype=torch.float64, device=DEVICE)
    ref, got = both_backends(lambda c, d, **kw: va.drop_dtw(c, d, 0.0, **kw), cost[:, :4], extra=(drop,))
    assert_same(ref, got, 0, 0)


def test_alignment_without_autograd():
    cost = rand(2, 5, 7)
    for gamma in (0.5, 0.0):
        ref = va.soft_dtw_alignment(cost, gamma, backend="torch")
        torch.testing.assert_close(va.soft_dtw_alignment(cost, gamma, backend="triton"), ref, rtol=1e-10, atol=1e-10)


def test_float32_small_gamma_large_costs_stays_exact():
    """|R| ~ 1e3 and gamma = 1e-3: float32 accumulation would lose the soft-min weights entirely."""
    cost = rand(2, 12, 10, dtype=torch.float32, scale=100.0)
    reference = va.soft_dtw_alignment(cost.double(), 1e-3, backend="torch")
    got = va.soft_dtw_alignment(cost, 1e-3, backend="triton")
    assert got.dtype == torch.float32
    assert (got.double() - reference).abs().max() < 1e-6


@pytest.mark.parametrize("gamma", [1e-39, 1e-44])
def test_float32_gammas_below_float32s_range_give_the_reference_numbers(gamma):
    """log2(e) / gamma overflows float32 at gamma < ~4e-39: the kernels' scale stays finite, so the
    best predecessor (difference 0) still weighs exp2(0) = 1, never 0 * inf = NaN."""
    cost = rand(2, 5, 6, dtype=torch.float32)
    ref = both_backends(lambda c, **kw: va.soft_dtw(c, gamma, **kw), cost.double())[0]
    got = both_backends(lambda c, **kw: va.soft_dtw(c, gamma, **kw), cost)[1]
    assert torch.isfinite(got[0]).all() and torch.isfinite(got[1][0]).all()
    torch.testing.assert_close(got[0].double(), ref[0], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(got[1][0].double(), ref[1][0], rtol=1e-6, atol=1e-6)


# R stored diagonal-major (from 0 rows up) or row-major (never), C and E with it (reorder) or
# row-major, inputs loaded one step ahead or not, a program per stripe of 4 or 2 rows or not (inf)
NEVER = float("inf")
KNOBS = pytest.mark.parametrize("prefetch, diagonal_major, reorder, stripe_rows", [
    (True, 0, True, NEVER), (False, 0, True, NEVER), (True, 0, False, NEVER), (True, NEVER, True, NEVER),
    (True, 0, True, 4), (False, NEVER, True, 2)])


def tiny_tiles(monkeypatch, prefetch, diagonal_major, reorder=True, stripe_rows=NEVER):
    monkeypatch.setattr(triton_dp, "_WARP", 2)
    monkeypatch.setattr(triton_dp, "_WIDE_WARP", 2)
    monkeypatch.setattr(triton_dp, "_MAX_ROWS", 4)
    monkeypatch.setattr(triton_dp, "_TILE", 8)
    monkeypatch.setattr(triton_dp, "_PROGRAMS", 1)
    monkeypatch.setattr(triton_dp, "_PREFETCH", prefetch)
    monkeypatch.setattr(triton_dp, "_DIAGONAL_MAJOR", diagonal_major)
    monkeypatch.setattr(triton_dp, "_REORDER", reorder)
    monkeypatch.setattr(triton_dp, "_STRIPE_ROWS", stripe_rows)


@KNOBS
@pytest.mark.parametrize("name", VARIANTS)
@pytest.mark.timeout(120)  # a program per stripe that waits for a count never reached hangs
def test_many_stripes_groups_and_problems_per_program(name, prefetch, diagonal_major, reorder, stripe_rows,
                                                       monkeypatch):
    """Tiny tiles force every path of the kernels: several stripes per grid, several warp groups
    per stripe (rows handed over through memory), several problems per program, several programs;
    inputs loaded in their step or one step ahead; R stored diagonal-major or row-major, and C and
    E with it or row-major; a program per stripe, waiting for the one above (below, backward)."""
    tiny_tiles(monkeypatch, prefetch, diagonal_major, reorder, stripe_rows)
    cost = variant_case(name, torch.float64)[1]
    meta = triton_dp._launch(cost[:, None], 0.5, None)[1]
    assert meta["STRIPED"] == (cost.shape[-2] > stripe_rows)
    assert meta["W"] == (stripe_rows if meta["STRIPED"] else 4) // 2
    for gamma in (0.5, 0.0):
        check_variant(name, torch.float64, gamma)


@pytest.mark.parametrize("gamma", [0.5, 0.0])
def test_a_pass_reorders_the_cost_once_and_a_second_backward_again(gamma, monkeypatch):
    """Diagonal-major storage: the forward reorders C and keeps it for the backward (soft; hard, the
    backward never reads C), which reorders only E back; a retained graph's second backward finds
    no kept C, reorders it again, and gets the same gradient."""
    tiny_tiles(monkeypatch, True, 0)
    calls, reorder = [], triton_dp._reorder

    def counted(x, to_diagonals):
        calls.append(to_diagonals)
        return reorder(x, to_diagonals)

    monkeypatch.setattr(triton_dp, "_reorder", counted)
    cost = rand(2, 6, 5).requires_grad_(True)
    value = va.soft_dtw(cost, gamma, backend="triton").sum()
    (first,) = torch.autograd.grad(value, cost, retain_graph=True)
    assert calls == [True, False]
    (second,) = torch.autograd.grad(value, cost)
    assert calls == ([True, False, True, False] if gamma > 0 else [True, False, False])
    torch.testing.assert_close(second, first, rtol=0, atol=0)
    ref = torch.autograd.grad(va.soft_dtw(cost, gamma, backend="torch").sum(), cost)[0]
    torch.testing.assert_close(first, ref, rtol=1e-10, atol=1e-10)


def test_a_program_per_stripe_takes_stripes_of_a_power_of_two_rows(monkeypatch):
    """_STRIPE_ROWS: grids of more rows get one program per stripe (the grid: problems x stripes,
    one problem each), of a power of two rows, else a ValueError that names the knob."""
    tiny_tiles(monkeypatch, True, 0, stripe_rows=4)
    grid, meta = triton_dp._launch(rand(3, 1, 9, 5), 0.5, None)
    assert meta["STRIPED"] and meta["P"] == 1 and grid == (3 * 3,)
    assert not triton_dp._launch(rand(3, 1, 4, 5), 0.5, None)[1]["STRIPED"]
    monkeypatch.setattr(triton_dp, "_STRIPE_ROWS", 3)
    with pytest.raises(ValueError, match="_STRIPE_ROWS must be a power of two, got 3"):
        triton_dp._launch(rand(3, 1, 9, 5), 0.5, None)


@pytest.mark.parametrize("gamma", [0.5, 0.0])
def test_without_the_reorder_c_and_e_stay_row_major_while_r_is_diagonal_major(gamma, monkeypatch):
    """_REORDER off: the kernels read C and write E row-major, no reorder runs, R is still stored
    diagonal-major (its end cells are read there), and the numbers are the reference's."""
    tiny_tiles(monkeypatch, True, 0, reorder=False)
    calls = []
    monkeypatch.setattr(triton_dp, "_reorder", lambda x, to_diagonals: calls.append(to_diagonals))
    cost = rand(3, 6, 5)
    meta = triton_dp._launch(cost[:, None], gamma, None)[1]
    assert meta["DIAG"] and not meta["CE_DIAG"]
    ref, got = both_backends(lambda c, **kw: va.soft_dtw(c, gamma, **kw), cost)
    assert calls == []
    assert_same(ref, got, 1e-10, 1e-10)


@pytest.mark.parametrize("batch, n, m", [(2, 5, 3), (1, 3, 5), (2, 1, 4), (1, 70, 130), (1, 130, 70), (1, 150, 64)])
def test_diagonal_major_storage_puts_each_anti_diagonal_in_one_run(batch, n, m):
    """The reorder kernel (tiles of 64 x 64, several per grid from 70 x 130 on; under 64 columns the
    kernel's other branch): cell (i, j) goes to (i + j) % m * n + i, a permutation whose
    anti-diagonals are contiguous runs, and back."""
    x = torch.arange(batch * 2 * n * m, dtype=torch.float64, device=DEVICE).reshape(batch, 2, n, m)
    stored = triton_dp._reorder(x, True)
    i, j = torch.meshgrid(torch.arange(n), torch.arange(m), indexing="ij")
    at = ((i + j) % m * n + i).reshape(-1).to(DEVICE)
    assert torch.equal(stored.reshape(batch * 2, n * m)[:, at], x.reshape(batch * 2, n * m))
    assert torch.equal(triton_dp._reorder(stored, False), x)


def interleaved_against_built(batch, n, m, gamma, dtype):
    """solve(S, fill=tau) on the triton backend (the grid read from the cost cells) against the torch
    backend on interleave(S, tau): values and the cost cells' gradients, each pair with its lengths."""
    from vtbench.align.engine import interleave, solve
    from vtbench.align.recursions import SOFT_DTW

    g = torch.Generator().manual_seed(batch + n)
    xl, yl = torch.randint(1, n + 1, (batch,), generator=g), torch.randint(1, m + 1, (batch,), generator=g)
    xl[0], yl[0] = n, m
    valid = (torch.arange(n) < xl[:, None])[:, :, None] & (torch.arange(m) < yl[:, None])[:, None, :]
    S = torch.where(valid, rand(batch, n, m, dtype=dtype, seed=n).cpu() - 0.5, torch.zeros((), dtype=dtype))
    S = S[:, None].to(DEVICE)  # padding holds finite values, as the engine requires
    n_len, m_len = (2 * xl + 1).to(DEVICE), (2 * yl + 1).to(DEVICE)
    results = []
    for backend, fill in (("triton", 0.3), ("torch", None)):
        leaf = S.clone().requires_grad_()
        grid = leaf if fill is not None else interleave(leaf, 0.3)
        value = solve(grid, SOFT_DTW, gamma, n_len, m_len, backend=backend, fill=fill)
        weights = torch.arange(1, batch + 1, dtype=value.dtype, device=DEVICE)
        (grad,) = torch.autograd.grad((value * weights).sum(), leaf)
        results.append((value.detach(), (grad,)))
    assert_same(results[1], results[0], *tolerance(dtype))
    assert not results[0][1][0][~valid[:, None].to(DEVICE)].any()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("gamma", [0.4, 0.0])
def test_the_interleaved_grid_equals_the_built_one(gamma, dtype):
    assert triton_dp.INTERLEAVED
    interleaved_against_built(5, 3, 4, gamma, dtype)


@KNOBS
@pytest.mark.timeout(120)  # a program per stripe that waits for a count never reached hangs
def test_the_interleaved_grid_across_groups_and_stripes(prefetch, diagonal_major, reorder, stripe_rows, monkeypatch):
    """Rows of one problem in several warp groups and stripes: the backward hands the interleaved
    grid's E over through memory without a grid-sized E."""
    tiny_tiles(monkeypatch, prefetch, diagonal_major, reorder, stripe_rows)
    for gamma in (0.4, 0.0):
        interleaved_against_built(3, 4, 3, gamma, torch.float64)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("smooth_gamma", [2.0, 0.1, 1e-3, 0.0])
@pytest.mark.parametrize("shape", [(3, 1, 1), (2, 1, 5), (2, 4, 1), (2, 3, 6, 5)])
def test_smoothing_matches_the_torch_form(shape, smooth_gamma, dtype, monkeypatch):
    """S2DTW's smoothing kernel: values and the gradient of a random upstream gradient, for N or M = 1
    and leading batch dimensions, across several programs (a tiny block)."""
    monkeypatch.setattr(triton_dp, "_SMOOTH_BLOCK", 16)
    cost, upstream = rand(*shape, dtype=dtype, seed=len(shape) + shape[-1]), rand(*shape, dtype=dtype, seed=9)
    ref, got = both_backends(lambda c, **kw: va.smooth_cost(c, smooth_gamma, **kw) * upstream, cost)
    assert_same(ref, got, *tolerance(dtype))


def test_hard_smoothing_breaks_ties_like_torch_argmin():
    """smooth_gamma = 0 on integer costs (ties everywhere): the gradient goes to the first of
    (left, up, diagonal) that attains the minimum."""
    cost = torch.randint(0, 3, (4, 6, 7), generator=torch.Generator().manual_seed(5)).double().to(DEVICE)
    assert_same(*both_backends(lambda c, **kw: va.smooth_cost(c, 0.0, **kw), cost), 0, 0)


def compile_for_h100(kernel, rec, dtype, hard, n, batch, fill=None, fast_log=False):
    """Compile one kernel to an sm_90 cubin (no GPU needed), with the launch constants of a batch
    (with ``fill``: of S2DTW's interleaved grid, (2n+1) x (2n+1), read from n x n costs; fast_log:
    the forward's FAST_LOG)."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    cost = torch.empty((batch, rec.n_states, n, n), dtype=dtype, device="meta")
    _, meta = triton_dp._launch(cost, 0.0 if hard else 0.1, True if rec.has_masked_moves else None, fill)
    num_warps = meta.pop("num_warps")
    fp = "*fp64" if dtype == torch.float64 else "*fp32"
    if kernel is triton_dp._forward_kernel:
        signature = {"C": fp, "R": "*fp64", "CHOICE": "*i8" if hard else "*fp64"}
        constexprs = dict(triton_dp._compile_time(rec), **meta, FAST_LOG=fast_log)
    else:
        signature = {"C": fp, "R": fp if hard else "*fp64", "CHOICE": "*i8" if hard else "*fp64",
                     "E": fp, "HANDOFF": fp, "SEED": "*fp64"}
        split = fill is not None and 2 * n + 1 > meta["LANES"]
        constexprs = dict(MOVES=triton_dp._compile_time(rec)["MOVES"], SPLIT=split, **meta)
    signature.update({"N_LEN": "*i64", "M_LEN": "*i64", "COL_MASK": "*i8" if meta["HAS_MASK"] else "*i64",
                      "GAMMA": "*fp64", "FLAGS": "*i32" if meta["STRIPED"] else "*i64", "B": "i32", "N": "i32",
                      "M": "i32"})
    signature.update({name: "constexpr" for name in constexprs})
    source = ASTSource(fn=kernel, signature=signature, constexprs=constexprs)
    return triton.compile(source, target=GPUTarget("cuda", 90, 32), options={"num_warps": num_warps})


#: The launch shapes compiled: (dtype, hard, n, batch, fill): the contrastive batch, long sequences, and
#: S2DTW's interleaved grid at the contrastive batch (8 x 8 costs) and across warp groups (40 x 40).
SHAPES = [(torch.float32, False, 17, 65536, None), (torch.float64, True, 2048, 64, None),
          (torch.float32, False, 8, 65536, 0.5), (torch.float32, True, 40, 64, 0.5)]


def compile_smoothing_for_h100(kernel, dtype, hard):
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    fp = "*fp64" if dtype == torch.float64 else "*fp32"
    if kernel is triton_dp._smooth_forward_kernel:
        signature = {"D": fp, "S": fp, "WEIGHTS": fp, "SMOOTH_GAMMA": "*fp64"}
        constexprs = {"HARD": hard, "BLOCK": triton_dp._SMOOTH_BLOCK}
    else:
        signature = {"G": fp, "WEIGHTS": fp, "GRAD": fp}
        constexprs = {"BLOCK": triton_dp._SMOOTH_BLOCK}
    signature.update({"CELLS": "i32", "N": "i32", "M": "i32"})  # (a launch below 2^31 cells passes an i32)
    signature.update({name: "constexpr" for name in constexprs})
    source = ASTSource(fn=kernel, signature=signature, constexprs=constexprs)
    return triton.compile(source, target=GPUTarget("cuda", 90, 32), options={"num_warps": 4})


def compile_reorder_for_h100(to_diagonals):
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    constexprs = {"TO_DIAGONALS": to_diagonals, "BLOCK": triton_dp._REORDER_BLOCK}
    signature = {"SRC": "*fp32", "DST": "*fp32", "N": "i32", "M": "i32", **{name: "constexpr" for name in constexprs}}
    source = ASTSource(fn=triton_dp._reorder_kernel, signature=signature, constexprs=constexprs)
    return triton.compile(source, target=GPUTarget("cuda", 90, 32), options={"num_warps": 4})


def compile_every_kernel_for_an_h100():
    for to_diagonals in (True, False):
        assert compile_reorder_for_h100(to_diagonals).asm["cubin"]
        print("reorder to", "diagonals" if to_diagonals else "rows", "compiled")
    for kernel in (triton_dp._smooth_forward_kernel, triton_dp._smooth_backward_kernel):
        for dtype, hard in ((torch.float32, False), (torch.float64, True)):
            compiled = compile_smoothing_for_h100(kernel, dtype, hard)
            assert compiled.asm["cubin"]
            # the weights' third plane at WEIGHTS + 2 CELLS: an i32 product would wrap from 2^30 cells
            wrapping = [line for line in compiled.asm["ttir"].splitlines() if "arith.muli" in line and "%CELLS" in line]
            assert not wrapping, wrapping
            print("smoothing", kernel.__name__, dtype, "hard" if hard else "soft", "compiled")
    for rec in va.RECURSIONS.values():
        for kernel in (triton_dp._forward_kernel, triton_dp._backward_kernel):
            for dtype, hard, n, batch, fill in SHAPES:
                if fill is not None and rec is not va.RECURSIONS["soft_dtw"]:
                    continue  # the interleaved grid is S2DTW's: soft-DTW's recursion
                compiled = compile_for_h100(kernel, rec, dtype, hard, n, batch, fill)
                assert compiled.asm["cubin"]
                print(rec.name, kernel.__name__, dtype, "hard" if hard else "soft", n, fill, "compiled")
    # _FAST_LOG: the soft-min's log one lg2.approx instead of libdevice's logf
    fast, libdevice = (compile_for_h100(triton_dp._forward_kernel, va.RECURSIONS["soft_dtw"], torch.float32, False,
                                        2048, 64, fast_log=fast_log) for fast_log in (True, False))
    assert "lg2.approx.f32" in fast.asm["ptx"] and "lg2.approx.f32" not in libdevice.asm["ptx"]
    print("soft_dtw _forward_kernel float32 soft 2048 FAST_LOG compiled")
    # _REORDER off: R diagonal-major, C and E row-major
    triton_dp._REORDER = False
    for kernel in (triton_dp._forward_kernel, triton_dp._backward_kernel):
        assert compile_for_h100(kernel, va.RECURSIONS["soft_dtw"], torch.float32, False, 2048, 64).asm["cubin"]
        print("soft_dtw", kernel.__name__, "without the reorder compiled")
    triton_dp._REORDER = True
    # a program per stripe of 512 rows: the ticket and the progress counters, thread 0's atomics
    triton_dp._STRIPE_ROWS = 512
    for kernel in (triton_dp._forward_kernel, triton_dp._backward_kernel):
        for fill in (None, 0.5):  # soft-DTW's grid, and S2DTW's interleaved one (its E handed over in HANDOFF)
            ptx = compile_for_h100(kernel, va.RECURSIONS["soft_dtw"], torch.float32, False, 2048, 64, fill).asm["ptx"]
            assert "ld.global.gpu.acquire" in ptx and "atom.global.gpu.release.exch" in ptx and ".cg" in ptx
            print("soft_dtw", kernel.__name__, fill, "a program per stripe compiled")
    triton_dp._STRIPE_ROWS = float("inf")


@pytest.mark.slow
def test_the_gpu_benchmark_table_runs_and_agrees():
    """`python -m vtbench.bench kernels --device cuda`'s rows at its quick sizes: on a GPU the table
    itself; here the same rows on CPU tensors in the interpreter (pysdtw on its CPU path, no
    bandwidth bound): the table's code, not the peers' CUDA paths."""
    from vtbench import bench

    pytest.importorskip("pysdtw")
    rows = bench.gpu_rows(repeat=1, quick=True, device=DEVICE)
    measured = [row for row in rows if "bound" not in row.name]
    per_size = ["vtbench soft_dtw"] * (4 if DEVICE.type == "cuda" else 3) + ["pysdtw (numba"]  # CUDA: + a CUDA graph
    assert [row.name.split(",")[0] for row in measured] == per_size * 2 + [
        "vtbench s2dtw", "vtbench s2dtw", "published pipeline (torch + pysdtw " + DEVICE.type.upper() + ")"]
    for row in measured:
        assert row.agrees == "reference" if row.reference else row.agrees.startswith("yes ("), (row.name, row.agrees)
        assert row.ms is not None and row.ms > 0
    bounds = [row.ms for row in rows if "bound" in row.name]
    assert len(bounds) == 3 and all((ms is None) == (DEVICE.type == "cpu") for ms in bounds)
    assert "triton backend" in bench.markdown(rows, DEVICE, 1)


@pytest.mark.slow
def test_every_launch_configuration_gives_the_same_numbers():
    """`python -m vtbench.bench triton-configs` at its quick sizes: groups of one warp and of several
    (the row shift through shared memory), few and many warps per step, small and large tiles of
    problems; each agrees with the default, and the default is back afterwards."""
    from vtbench import bench

    default = tuple(getattr(triton_dp, name) for name in bench.TRITON_KNOBS)
    rows = bench.triton_config_rows(repeat=1, quick=True, device=DEVICE)
    configs = bench.triton_configs(DEVICE)
    assert len(rows) == 2 * len(configs) and configs[0] == default and {bench._computes(c) for c in configs} == {
        bench._computes(c) for c in bench.TRITON_CONFIGS}
    for row in rows:
        assert row.agrees == "reference" if row.reference else row.agrees.startswith("yes ("), (row.name, row.agrees)
        assert row.ms is not None and row.ms > 0
    assert tuple(getattr(triton_dp, name) for name in bench.TRITON_KNOBS) == default
    assert "triton kernels" in bench.markdown(rows, DEVICE, 1, "triton-configs")


def test_a_problem_beyond_32_bit_offsets_is_refused_before_launch():
    """Offsets within one problem are int32 (the hot loops' index arithmetic): 46341 x 46341 cells
    would wrap them, silently, on a GPU that holds the 16 GiB of R."""
    fine = torch.empty((64, 1, 2048, 2048), device="meta")
    assert triton_dp._launch(fine, 0.1, None)[0] == (64,)
    for shape, fill in (((1, 1, 46341, 46341), None), ((1, 3, 32768, 32768), None), ((1, 1, 23170, 23171), 0.5)):
        with pytest.raises(ValueError, match="32-bit offsets: .* must be below 2\\^31"):
            triton_dp._launch(torch.empty(shape, device="meta"), 0.1, None, fill)


@pytest.mark.slow
@pytest.mark.skipif(DEVICE.type == "cuda", reason="the CUDA tests compile and run the kernels")
def test_kernels_compile_for_an_h100():
    """The interpreter does not check what only the compiler does (constexpr globals, loop-carried
    types, layouts): compile every kernel to sm_90 machine code, small-problem and large tiles, in
    a process without TRITON_INTERPRET (this file run as a script)."""
    pytest.importorskip("triton.backends.nvidia")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_DEFAULT_FP_FUSION"] = env.get("TRITON_DEFAULT_FP_FUSION", "1")
    done = subprocess.run([sys.executable, __file__], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    # + FAST_LOG, without the reorder, a program per stripe
    assert done.stdout.count("compiled") == 2 + 4 + 2 * (2 * len(va.RECURSIONS) + 2) + 1 + 2 + 4


# ------------------------------------------------------------------------------ CUDA, large


cuda_only = pytest.mark.skipif(not COMPILED, reason="needs a CUDA GPU (compiled kernels)")


def cuda_rand(*shape, seed=0):
    g = torch.Generator(device="cuda").manual_seed(seed)
    return torch.rand(*shape, generator=g, device="cuda")


def relative_gap(got, ref):
    return ((got.double() - ref.double()).abs().max() / ref.double().abs().max().clamp_min(1e-30)).item()


@cuda_only
@pytest.mark.slow
@pytest.mark.parametrize("batch, n, m", [(64, 128, 128), (64, 512, 512), (2, 2048, 2048), (4, 3000, 700)])
def test_cuda_soft_dtw_large(batch, n, m):
    """Float32 costs against the float64 reference. The gradient's error grows with the path: each
    move's weight is one float32 exponential (~1e-7), and E multiplies them along n + m steps (an
    H200 measured 1.2e-5 of max E at 2048 x 2048), so the bound is 1e-8 per step, at least 1e-5."""
    x, y = cuda_rand(batch, n, 16), cuda_rand(batch, m, 16, seed=1)
    cost = va.pairwise_cost(x, y, "sqeuclidean")
    ref, got = both_backends(lambda c, **kw: va.soft_dtw(c, 0.1, **kw), cost)
    assert relative_gap(got[0], ref[0]) < 1e-6
    assert relative_gap(got[1][0], ref[1][0]) < max(1e-5, 1e-8 * (n + m))


@cuda_only
@pytest.mark.parametrize("kernel", ["soft_dtw", "s2dtw", "otam", "drop_dtw"])
def test_cuda_backend_never_waits_for_the_gpu(kernel):
    """The triton backend's forward and backward queue their work and return: no host-device sync
    (an index list copied from the host was one), so the host can run ahead of the kernels. The
    public functions' input checks read values back, unless value_checks(False)."""
    from vtbench.align import engine

    public = {"soft_dtw": lambda c: va.soft_dtw(c, 0.1, backend="triton"),
              "s2dtw": lambda c: va.s2dtw(c, 0.1, backend="triton"),
              "otam": lambda c: va.otam(c, 0.1, backend="triton"),
              "drop_dtw": lambda c: va.drop_dtw(c, 0.3, 0.1, backend="triton")}[kernel]
    cost = cuda_rand(64, 12, 12)
    fill, n = (0.5, 25) if kernel == "s2dtw" else (None, 12)  # S2DTW: the 25 x 25 grid of 12 x 12 costs
    lengths = torch.full((64,), n, device="cuda")

    def run():
        leaf = cost.detach().requires_grad_(True)
        if kernel in ("soft_dtw", "s2dtw"):  # the engine alone, without the public function's checks
            engine.solve(leaf[:, None], va.SOFT_DTW, 0.1, lengths, lengths, None, "triton", fill).sum().backward()
        with va.value_checks(False):  # the public function, without the checks that read back
            public(leaf).sum().backward()

    run()  # compiles, and caches the kernels' scalars on the device
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        run()
    finally:
        torch.cuda.set_sync_debug_mode(0)


@cuda_only
@pytest.mark.slow
def test_cuda_contrastive_s2dtw_all_pairs():
    """The VT-TWINS loss over 256 videos: 65,536 S2DTW problems of 8 x 8 (17 x 17 grids)."""
    v = torch.nn.functional.normalize(cuda_rand(256, 8, 32) - 0.5, dim=-1)
    t = torch.nn.functional.normalize(cuda_rand(256, 8, 32, seed=1) - 0.5, dim=-1)
    cost = -torch.einsum("vnd,tmd->vtnm", v, t)  # (256, 256, 8, 8)
    ref, got = both_backends(lambda c, **kw: va.s2dtw(c, 0.1, **kw), cost)
    assert relative_gap(got[0], ref[0]) < 1e-6
    assert relative_gap(got[1][0], ref[1][0]) < 1e-5


@cuda_only
@pytest.mark.slow
@pytest.mark.parametrize("gamma", [0.1, 0.0])
def test_cuda_variants_with_lengths(gamma):
    batch, n, m = 16, 90, 130
    g = torch.Generator(device="cuda").manual_seed(0)
    xl = torch.randint(1, n + 1, (batch,), generator=g, device="cuda")
    yl = torch.maximum(torch.randint(1, m + 1, (batch,), generator=g, device="cuda"), xl)
    cost, drop = cuda_rand(batch, n, m).double(), cuda_rand(batch, m, seed=2).double()
    lens = dict(x_lengths=xl, y_lengths=yl)
    assert_same(*both_backends(lambda c, **k: va.soft_dtw(c, gamma, **k), cost, **lens), 1e-9, 1e-9)
    assert_same(*both_backends(lambda c, **k: va.otam(c, gamma, **k), cost, **lens), 1e-9, 1e-9)
    dropping = both_backends(lambda c, d, **k: va.drop_dtw(c, d, gamma, **k), cost, extra=(drop,), **lens)
    assert_same(*dropping, 1e-9, 1e-9)
    short = dict(x_lengths=xl.clamp(max=20), y_lengths=yl.clamp(max=24))
    assert_same(*both_backends(lambda c, **k: va.s2dtw(c, gamma, **k), cost[:, :20, :24] - 0.5, **short), 1e-9, 1e-9)


@cuda_only
@pytest.mark.slow
@pytest.mark.timeout(120)  # a wait for a count never reached hangs
@pytest.mark.parametrize("stripe_rows", [512, 128])
def test_cuda_a_program_per_stripe_gives_the_same_numbers(stripe_rows, monkeypatch):
    """_STRIPE_ROWS: each problem's stripes on programs of their own, running side by side, each
    waiting for the stripe above (forward) or below (backward) through progress counters. The
    numbers are the one-program walk's, bit for bit (the same operations on the same cells), with
    lengths that end problems inside a stripe, masked moves, hard and soft, and S2DTW's grid."""
    batch, n, m = 6, 1500, 900
    g = torch.Generator(device="cuda").manual_seed(3)
    lens = dict(x_lengths=torch.tensor([1500, 1, 700, 1024, 513, 1499], device="cuda"),
                y_lengths=torch.randint(1, m + 1, (batch,), generator=g, device="cuda"))
    cost, drop = cuda_rand(batch, n, m), cuda_rand(batch, m, seed=2)
    cases = [lambda c, gamma: va.soft_dtw(c, gamma, backend="triton", **lens),
             lambda c, gamma: va.drop_dtw(c, drop, gamma, backend="triton", **lens),
             lambda c, gamma: va.s2dtw(c[:, :400, :300] - 0.5, gamma, backend="triton")]
    for case in cases:
        for gamma in (0.1, 0.0):
            results = []
            for rows in (float("inf"), stripe_rows):
                monkeypatch.setattr(triton_dp, "_STRIPE_ROWS", rows)
                leaf = cost.detach().clone().requires_grad_(True)
                value = case(leaf, gamma)
                results.append((value, torch.autograd.grad(value.sum(), leaf)[0]))
            torch.testing.assert_close(results[1], results[0], rtol=0, atol=0)


@cuda_only
@pytest.mark.slow
def test_cuda_float32_small_gamma_precision():
    x, y = cuda_rand(256, 8), cuda_rand(256, 8, seed=1)
    cost = torch.cdist(x, y).square()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = va.soft_dtw_alignment(cost, 1e-3, backend="triton")
    ref = va.soft_dtw_alignment(cost.double(), 1e-3, backend="torch")
    assert relative_gap(got, ref) < 1e-6


if __name__ == "__main__":  # used by test_kernels_compile_for_an_h100
    compile_every_kernel_for_an_h100()
