"""The C++ CPU backend equals the torch reference: every recursion, soft and hard, float32 and
float64, variable lengths, bands, drop rows with +inf, batches that do not fill a SIMD chunk (of 1,
4, 16 and 24 lanes); its float32 weights keep the gradient of float64 ones; its pooled buffers are
never handed out while anyone holds them; S2DTW's smoothing in C++ equals the torch form, and the
interleaved grid it reads from the cost cells (``fill``) equals the grid built in torch."""
import os
import shutil

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vtbench.align import SOFT_DTW, Move, Recursion, drop_dtw, otam, s2dtw, smooth_cost, soft_dtw, soft_dtw_alignment, solve
from vtbench.align.backends import cpu
from vtbench.align.engine import interleave

try:
    cpu.extension()
except RuntimeError as err:
    if shutil.which(os.environ.get("CXX", "c++")):  # (torch's compiler) one that fails on the kernel is a bug
        raise
    pytest.skip(f"no C++ compiler here, the torch backend is used instead: {err}", allow_module_level=True)

GAMMAS = [1.0, 0.1, 1e-3, 0.0]


def _value_and_grad(kernel, cost, backend):
    leaf = cost.clone().requires_grad_()
    value = kernel(leaf, backend=backend)
    (grad,) = torch.autograd.grad(value.sum(), leaf)
    return value.detach(), grad


def assert_matches_reference(kernel, cost, rtol=1e-10, atol=1e-10):
    value, grad = _value_and_grad(kernel, cost, "cpu")
    ref_value, ref_grad = _value_and_grad(kernel, cost, "torch")
    assert value.dtype == grad.dtype == cost.dtype
    assert torch.isfinite(value).all() and torch.isfinite(grad).all()
    torch.testing.assert_close(value, ref_value, rtol=rtol, atol=atol)
    torch.testing.assert_close(grad, ref_grad, rtol=rtol, atol=atol)


def _cost(*shape, dtype=torch.float64, seed=0, scale=1.0):
    return torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(seed)) * scale


def _lengths(batch, size, seed):
    return torch.randint(1, size + 1, (batch,), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("batch", [1, 2, 5, 16, 37, 200])  # chunks of 1, 4, 16 and 24 lanes, full and partial
def test_soft_dtw_matches_reference(gamma, batch):
    cost = _cost(batch, 9, 13, seed=batch)
    assert_matches_reference(lambda c, backend: soft_dtw(c, gamma, backend=backend), cost)


@pytest.mark.parametrize("gamma", GAMMAS)
def test_variable_lengths_and_bands(gamma):
    cost = _cost(21, 10, 12, seed=1)
    x_len, y_len = _lengths(21, 10, 2), _lengths(21, 12, 3)
    assert_matches_reference(lambda c, backend: soft_dtw(c, gamma, x_lengths=x_len, y_lengths=y_len, backend=backend), cost)
    square = _cost(19, 12, 12, seed=4)
    assert_matches_reference(lambda c, backend: soft_dtw(c, gamma, bandwidth=2, backend=backend), square)


@pytest.mark.parametrize("gamma", GAMMAS)
def test_otam_and_s2dtw_match_reference(gamma):
    cost = _cost(18, 7, 9, seed=5)
    x_len, y_len = _lengths(18, 7, 6), _lengths(18, 9, 7)
    assert_matches_reference(lambda c, backend: otam(c, gamma, backend=backend), cost)
    assert_matches_reference(lambda c, backend: otam(c, gamma, x_lengths=x_len, y_lengths=y_len, backend=backend), cost)
    assert_matches_reference(lambda c, backend: s2dtw(c, gamma, 0.1, 0.5, backend=backend), cost)
    assert_matches_reference(lambda c, backend: s2dtw(c, gamma, 0.1, 0.5, x_lengths=x_len, y_lengths=y_len,
                                                      backend=backend), cost)


@pytest.mark.parametrize("gamma", GAMMAS)
def test_drop_dtw_with_forbidden_drops_matches_reference(gamma):
    cost = _cost(17, 6, 11, seed=8)
    drop = torch.rand(17, 11, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    drop[:, 2] = float("inf")  # clip 2 must be matched
    drop[3] = float("inf")  # pair 3 drops nothing: plain DTW that matches every clip
    y_len = _lengths(17, 11, 10).clamp_min(6)
    assert_matches_reference(lambda c, backend: drop_dtw(c, drop, gamma, backend=backend), cost)
    assert_matches_reference(lambda c, backend: drop_dtw(c, drop, gamma, y_lengths=y_len, backend=backend), cost)
    # the gradient with respect to the drop costs goes through the same kernel
    assert_matches_reference(lambda d, backend: drop_dtw(cost, d, gamma, backend=backend), drop.clamp_max(5.0))


@pytest.mark.parametrize("gamma", [0.5, 0.0])
def test_float32_matches_reference(gamma):
    cost = _cost(20, 30, 25, dtype=torch.float32, seed=11)
    close = dict(rtol=1e-6, atol=1e-6)
    assert_matches_reference(lambda c, backend: soft_dtw(c, gamma, backend=backend), cost, **close)
    assert_matches_reference(lambda c, backend: s2dtw(c, gamma, backend=backend), cost[:, :8, :8], **close)
    y_len = _lengths(20, 25, 19).clamp_min(12)
    assert_matches_reference(lambda c, backend: otam(c, gamma, y_lengths=y_len, backend=backend), cost, **close)
    drop = torch.rand(20, 25, generator=torch.Generator().manual_seed(20))
    drop[:, 3] = float("inf")
    assert_matches_reference(lambda c, backend: drop_dtw(c[:, :12], drop, gamma, y_lengths=y_len, backend=backend),
                             cost, **close)


@pytest.mark.parametrize("batch", [16, 200])  # the packed weights of 16 and 24 lanes
def test_float32_weights_keep_the_gradient_of_float64_weights(batch):
    """For float32 costs the kernel saves its weights in float32 (two per cell, the argmin's is one
    minus the others): the gradient stays within float32 rounding of the one from float64 weights."""
    g = torch.Generator().manual_seed(21)
    n = 128 if batch == 16 else 24
    cost32 = torch.cdist(torch.randn(batch, n, 8, generator=g), torch.randn(batch, n, 8, generator=g)).square()
    for gamma in (1e-3, 0.1, 1.0, 10.0):
        E32 = soft_dtw_alignment(cost32, gamma, backend="cpu")
        E64 = soft_dtw_alignment(cost32.double(), gamma, backend="cpu")  # float64 weights, the same costs
        assert E32.dtype == torch.float32
        err = ((E32.double() - E64).abs().amax((1, 2)) / E64.abs().amax((1, 2))).max()
        assert err < 2e-7, (gamma, float(err))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("smooth_gamma", [2.0, 0.1, 1e-3, 0.0])
@pytest.mark.parametrize("shape", [(3, 1, 1), (5, 1, 9), (4, 7, 1), (70, 8, 8), (2, 3, 13, 10), (33, 2, 17)])
def test_smoothing_matches_the_torch_form(shape, smooth_gamma, dtype):
    """Any N and M (rows shorter and longer than a vector), more pairs than one buffer block (32),
    leading batch dimensions; values and the gradient of a random upstream gradient."""
    cost = _cost(*shape, dtype=dtype, seed=len(shape) + shape[-1])
    upstream = _cost(*shape, dtype=dtype, seed=99)
    got, want = [], []
    for backend, out in (("cpu", got), ("torch", want)):
        leaf = cost.clone().requires_grad_()
        smoothed = smooth_cost(leaf, smooth_gamma, backend=backend)
        (grad,) = torch.autograd.grad((smoothed * upstream).sum(), leaf)
        out += [smoothed.detach(), grad]
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-5)
    for g, w in zip(got, want):
        assert g.dtype == dtype and g.shape == cost.shape
        torch.testing.assert_close(g, w, **tol)


def test_hard_smoothing_breaks_ties_like_torch_argmin():
    """smooth_gamma = 0 on integer costs (ties everywhere): the whole gradient goes to the first of
    (left, up, diagonal) that attains the minimum, as the torch form's argmin sends it."""
    cost = torch.randint(0, 3, (40, 6, 7), generator=torch.Generator().manual_seed(5)).double()
    assert_matches_reference(lambda c, backend: smooth_cost(c, 0.0, backend=backend), cost, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("gamma", [1.0, 0.1, 0.0])
@pytest.mark.parametrize("batch", [1, 5, 16, 37, 200])
def test_the_interleaved_grid_equals_the_built_one(batch, gamma, dtype):
    """solve(S, fill=tau) on the cpu backend, which never builds the (2N+1) x (2M+1) grid, equals
    solve(interleave(S, tau)): values and gradients (on the cost cells), with each pair's lengths."""
    S = _cost(batch, 1, 5, 7, dtype=dtype, seed=batch)
    n_len, m_len = 2 * _lengths(batch, 5, 1) + 1, 2 * _lengths(batch, 7, 2) + 1
    valid = (torch.arange(5) < (n_len[:, None] - 1) // 2)[:, :, None] & (torch.arange(7) < (m_len[:, None] - 1) // 2)[:, None, :]
    S = torch.where(valid[:, None], S, torch.zeros((), dtype=dtype))  # the engine's contract: padding finite
    results = []
    for fill_here in (True, False):
        leaf = S.clone().requires_grad_()
        if fill_here:
            value = solve(leaf, SOFT_DTW, gamma, n_len, m_len, backend="cpu", fill=0.3)
        else:
            value = solve(interleave(leaf, 0.3), SOFT_DTW, gamma, n_len, m_len, backend="cpu")
        (grad,) = torch.autograd.grad(value.sum(), leaf)
        results.append((value.detach(), grad))
    (value, grad), (want_value, want_grad) = results
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(value, want_value, **tol)
    torch.testing.assert_close(grad, want_grad, **tol)
    assert not grad[~valid[:, None]].any()


def test_pooled_buffers_are_never_shared():
    """Weights and gradients come from a pool: a buffer is reused only once nobody holds it."""
    costs = [_cost(24, 20, 20, seed=30 + k) for k in range(3)]
    kept = soft_dtw_alignment(costs[0], 0.1, backend="cpu")  # held by the caller
    copy = kept.clone()
    leaves = [c.clone().requires_grad_() for c in costs[1:]]
    values = [soft_dtw(leaf, 0.1, backend="cpu") for leaf in leaves]  # two graphs alive at once
    for leaf, value in zip(leaves, values):
        (grad,) = torch.autograd.grad(value.sum(), leaf)
        torch.testing.assert_close(grad, soft_dtw_alignment(leaf.detach(), 0.1, backend="torch"), rtol=1e-10, atol=1e-10)
    assert torch.equal(kept, copy)
    cpu.release_memory()
    assert torch.equal(kept, copy)
    torch.testing.assert_close(soft_dtw_alignment(costs[0], 0.1, backend="cpu"), copy, rtol=0, atol=0)


def test_hard_ties_go_to_the_first_move_like_the_reference():
    cost = torch.randint(0, 2, (33, 8, 8), generator=torch.Generator().manual_seed(12)).double()  # many ties
    assert_matches_reference(lambda c, backend: soft_dtw(c, 0.0, backend=backend), cost, rtol=0, atol=0)
    assert_matches_reference(lambda c, backend: otam(c, 0.0, backend=backend), cost, rtol=0, atol=0)


def test_small_gamma_and_large_costs_stay_finite_and_exact():
    cost = _cost(16, 64, 64, seed=13, scale=1e4).abs()
    for dtype in (torch.float64, torch.float32):
        assert_matches_reference(lambda c, backend: soft_dtw(c, 1e-4, backend=backend), cost.to(dtype),
                                 rtol=1e-6 if dtype == torch.float32 else 1e-10, atol=1e-6)


@pytest.mark.parametrize("gamma", [0.3, 0.0])
def test_other_recursions_through_the_engine(gamma):
    """Recursions with one, two and four moves (the kernel is generic over the Recursion data)."""
    recursions = [
        Recursion("diag_left", ((Move(0, 1, 1), Move(0, 0, 1)),), ("corner",), (0,)),
        Recursion("left_only", ((Move(0, 0, 1),),), ("left",), (0,)),
        Recursion("two_states",  # state 0: soft-DTW's moves and a fourth; state 1: masked horizontal moves
                  ((Move(0, 1, 1), Move(0, 1, 0), Move(0, 0, 1), Move(1, 1, 1)), (Move(0, 0, 1), Move(1, 0, 1, masked=True))),
                  ("corner", "left_first"), (0, 1)),
    ]
    cost = _cost(19, 2, 6, 7, seed=14)
    n_len = _lengths(19, 6, 15)
    m_len = torch.maximum(_lengths(19, 7, 16), n_len)  # diag_left reaches the end cell only if n <= m
    col_mask = torch.rand(19, 7, generator=torch.Generator().manual_seed(17)) < 0.5
    for rec in recursions:
        mask = col_mask if rec.has_masked_moves else None
        assert_matches_reference(lambda x, backend: solve(x, rec, gamma, n_len, m_len, mask, backend=backend),
                                 cost[:, : rec.n_states].contiguous())


def test_a_recursion_the_row_sweep_cannot_order_is_refused_by_name_and_runs_on_torch_under_auto():
    rec = Recursion("cycle", ((Move(0, 1, 1), Move(0, 1, 0), Move(0, 0, 1), Move(1, 0, 1)), (Move(0, 1, 1),)),
                    ("corner", "corner"), (0,))  # state 0 reads state 1 horizontally
    cost, lengths = _cost(2, 2, 3, 3), torch.tensor([3, 3])
    with pytest.raises(ValueError, match="backend='cpu' cannot run recursion 'cycle': .* may not read a later state"):
        solve(cost, rec, 0.5, lengths, lengths, backend="cpu")
    assert torch.equal(solve(cost, rec, 0.5, lengths, lengths), solve(cost, rec, 0.5, lengths, lengths, backend="torch"))
    assert torch.isfinite(solve(cost, rec, 0.5, lengths, lengths)).all()


def test_more_states_or_moves_than_the_kernel_holds_run_on_torch_under_auto():
    five = Recursion("five", tuple((Move(0, 1, 1), Move(s, 0, 1)) for s in range(5)), ("corner",) + (None,) * 4,
                     (0, 4))
    cost, lengths = _cost(2, 5, 3, 3), torch.tensor([3, 3])
    with pytest.raises(ValueError, match="backend='cpu' cannot run recursion 'five': it runs at most 4 states"):
        solve(cost, five, 0.5, lengths, lengths, backend="cpu")
    assert torch.equal(solve(cost, five, 0.5, lengths, lengths), solve(cost, five, 0.5, lengths, lengths, backend="torch"))


def test_results_do_not_depend_on_the_number_of_threads():
    cost = _cost(64, 20, 20, seed=18)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        single = _value_and_grad(lambda c, backend: soft_dtw(c, 0.1, backend=backend), cost, "cpu")
    finally:
        torch.set_num_threads(threads)
    many = _value_and_grad(lambda c, backend: soft_dtw(c, 0.1, backend=backend), cost, "cpu")
    assert torch.equal(single[0], many[0]) and torch.equal(single[1], many[1])


def test_the_build_is_cached_and_the_cli_reuses_it(capsys):
    assert cpu.extension() is cpu.extension()
    assert cpu.main(["--build"]) == 0
    out = capsys.readouterr()
    assert "ready" in out.out and "compiling" not in out.err
    assert cpu.available(torch.device("cpu")) and not cpu.available(torch.device("meta"))


def test_a_build_lock_is_waited_for_and_one_a_killed_build_left_is_removed(tmp_path, capsys):
    import os
    import threading
    import time

    lock = tmp_path / "lock"
    lock.touch()  # another process building: wait until its lock goes
    threading.Timer(0.3, lock.unlink).start()
    began = time.perf_counter()
    cpu.wait_for_build(lock, poll_s=0.05)
    assert time.perf_counter() - began >= 0.25 and "waiting for another process" in capsys.readouterr().err
    lock.touch()  # older than any build takes: torch would wait for it forever
    os.utime(lock, (time.time() - cpu.STALE_LOCK_S - 60,) * 2)
    with pytest.warns(UserWarning, match="build lock .* a build that was killed left it"):
        cpu.wait_for_build(lock)
    assert not lock.exists()
    cpu.wait_for_build(lock)  # none: nothing to wait for


@settings(max_examples=30, deadline=None)
@given(
    batch=st.integers(1, 40), n=st.integers(1, 12), m=st.integers(1, 12),
    gamma=st.one_of(st.just(0.0), st.floats(1e-3, 10.0)), seed=st.integers(0, 2**31 - 1),
)
def test_property_cpu_equals_reference(batch, n, m, gamma, seed):
    cost = _cost(batch, n, m, seed=seed, scale=3.0)
    x_len, y_len = _lengths(batch, n, seed + 1), _lengths(batch, m, seed + 2)
    assert_matches_reference(
        lambda c, backend: soft_dtw(c, gamma, x_lengths=x_len, y_lengths=y_len, backend=backend), cost, rtol=1e-9, atol=1e-9)
    assert_matches_reference(
        lambda c, backend: otam(c, gamma, x_lengths=x_len, y_lengths=y_len, backend=backend), cost, rtol=1e-9, atol=1e-9)
