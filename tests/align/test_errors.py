"""Bad input is a ValueError that names the argument; never a silent inf or NaN."""
import numpy as np
import pytest
import torch

from vtbench.align import (DROP_DTW, SOFT_DTW, Move, Recursion, backends, drop_dtw, dtw_path, expected_alignment, otam,
                           pairwise_cost, s2dtw, s2dtw_grid, smooth_cost, soft_dtw, soft_dtw_alignment, solve,
                           solve_alignment, value_checks)

C = torch.rand(4, 5)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: soft_dtw(torch.tensor([[1.0, float("nan")]])), "cost must be finite"),
        (lambda: soft_dtw(torch.tensor([[1.0, float("inf")]])), "cost must be finite"),
        (lambda: soft_dtw(C, -0.1), "gamma must be a finite number >= 0"),
        (lambda: soft_dtw(C, float("nan")), "gamma"),
        (lambda: s2dtw(C, smooth_gamma=-1.0), "smooth_gamma"),
        (lambda: soft_dtw(C, x_lengths=0), "x_lengths must lie in 1..4"),
        (lambda: soft_dtw(C, y_lengths=6), "y_lengths must lie in 1..5"),
        (lambda: soft_dtw(C[None].expand(3, 4, 5), x_lengths=torch.tensor([1, 2])), "x_lengths must have the batch shape"),
        (lambda: soft_dtw(C, x_lengths=torch.tensor(2.0)), "x_lengths must hold integers"),
        (lambda: soft_dtw(torch.ones(4, 5, dtype=torch.int64)), "cost must be a floating-point tensor"),
        (lambda: soft_dtw(torch.ones(5)), r"cost must have shape \(\.\.\., N, M\)"),
        (lambda: soft_dtw(torch.ones(0, 5)), "N >= 1 and M >= 1"),
        (lambda: soft_dtw(torch.rand(3, 8), bandwidth=2), "bandwidth=2 leaves the end cell unreachable"),
        (lambda: soft_dtw(C, bandwidth=-1), "bandwidth must be an integer >= 0"),
        (lambda: drop_dtw(torch.rand(6, 3), torch.rand(3)), "cost has 6 rows but 3 columns"),
        (lambda: drop_dtw(torch.rand(6, 6), torch.rand(6), x_lengths=6, y_lengths=3),
         "x_lengths must not exceed y_lengths"),
        (lambda: drop_dtw(C, torch.rand(7)), "drop_cost must broadcast"),
        (lambda: drop_dtw(C, torch.tensor([0.1, float("nan"), 0.1, 0.1, 0.1])), "drop_cost must be finite"),
        (lambda: drop_dtw(C, torch.ones(5, dtype=torch.int64)), "drop_cost must be a floating-point tensor"),
        (lambda: drop_dtw(C, True), "drop_cost must be a floating-point tensor or a number, got True"),
        (lambda: drop_dtw(C, "a"), "drop_cost must be a floating-point tensor or a number, got 'a'"),
        (lambda: drop_dtw(C, None), "drop_cost must be a floating-point tensor or a number, got None"),
        (lambda: drop_dtw(C, float("nan")), r"drop_cost must be finite or \+inf"),
        (lambda: soft_dtw(C, x_lengths="ab"), "x_lengths must be a tensor or sequence of integers, got str"),
        (lambda: smooth_cost(torch.tensor([[1.0, float("nan")]])), "cost must be finite"),
        (lambda: s2dtw_grid(torch.ones(4, 5, dtype=torch.int64)), "cost must be a floating-point tensor"),
        (lambda: smooth_cost(torch.ones(5)), r"cost must have shape \(\.\.\., N, M\)"),
        (lambda: soft_dtw(C, torch.tensor(0.5, requires_grad=True)), "gamma is not differentiable"),
        (lambda: soft_dtw(C, backend="gpu"), "backend must be one of"),
        (lambda: pairwise_cost(torch.rand(3, 4), torch.rand(3, 5)), "share the embedding size"),
        (lambda: pairwise_cost(torch.rand(3, 4), torch.rand(3, 4), "l1"), "metric must be one of"),
        (lambda: pairwise_cost(torch.rand(3, 4), torch.rand(3, 4), all_pairs=True), "all_pairs needs"),
    ],
)
def test_bad_input_raises_a_named_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_padding_may_hold_anything_but_the_valid_block_may_not():
    cost = torch.rand(2, 4, 4)
    cost[0, 3] = float("nan")
    assert torch.isfinite(soft_dtw(cost, x_lengths=torch.tensor([3, 4]))).all()
    with pytest.raises(ValueError, match="cost must be finite"):
        soft_dtw(cost, x_lengths=torch.tensor([4, 4]))


def test_drop_cost_may_be_a_number_and_its_padding_anything(backend):
    cost = torch.rand(2, 3, 5, dtype=torch.float64)
    for scalar in (0.4, torch.tensor(0.4, dtype=torch.float64)):
        want = drop_dtw(cost, torch.full((5,), 0.4, dtype=torch.float64), 0.1, backend=backend)
        torch.testing.assert_close(drop_dtw(cost, scalar, 0.1, backend=backend), want)
    drop = torch.rand(2, 5, dtype=torch.float64)
    lengths = torch.tensor([3, 5])
    want = drop_dtw(cost, drop, 0.1, y_lengths=lengths, backend=backend)
    drop[0, 3:] = float("nan")  # beyond y_lengths: padding
    leaf = drop.clone().requires_grad_()
    value = drop_dtw(cost, leaf, 0.1, y_lengths=lengths, backend=backend)
    torch.testing.assert_close(value, want)
    (grad,) = torch.autograd.grad(value.sum(), leaf)
    assert torch.isfinite(grad).all() and not grad[0, 3:].any()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_alignments_of_half_precision_costs(dtype, backend):
    cost = torch.rand(3, 4, 5)
    for alignment in (lambda c: soft_dtw_alignment(c, 0.1, backend=backend), lambda c: dtw_path(c, backend=backend)):
        got = alignment(cost.to(dtype))
        assert got.dtype == dtype
        torch.testing.assert_close(got.float(), alignment(cost.to(dtype).float()).to(dtype).float())


def test_a_cpu_only_backend_refuses_other_devices():
    with pytest.raises(ValueError, match="cannot run on device"):
        backends.select("cpu", torch.device("meta"))


@pytest.mark.parametrize("gamma", [1e-4, 1e-2, 1.0])
def test_float32_stays_finite_for_small_gamma_and_large_costs(gamma, backend):
    torch.manual_seed(0)
    cost = (torch.rand(3, 40, 50) * 1e4).requires_grad_()
    for fn in (lambda c: soft_dtw(c, gamma, backend=backend), lambda c: otam(c, gamma, backend=backend),
               lambda c: s2dtw(c, gamma, gamma, backend=backend)):
        value = fn(cost)
        (grad,) = torch.autograd.grad(value.sum(), cost)
        assert torch.isfinite(value).all() and torch.isfinite(grad).all()


def test_alignments_name_a_cost_that_is_not_a_tensor():
    for alignment in (soft_dtw_alignment, dtw_path):
        with pytest.raises(TypeError, match="cost must be a torch.Tensor, got list"):
            alignment([[1.0, 2.0]])
    with pytest.raises(TypeError, match="cost must be a torch.Tensor, got ndarray"):
        expected_alignment(s2dtw, np.ones((2, 3)))


def test_drop_dtw_of_an_empty_batch_is_empty(backend):
    assert drop_dtw(torch.rand(0, 3, 4), 0.5, backend=backend).shape == (0,)


@pytest.mark.parametrize("n_len, m_len, match", [
    ([4], [5, 5, 5], r"n_len must be an int64 tensor of shape \(3,\)"),
    ([4, 9, 4], [5, 5, 5], r"n_len must lie in 1..4 \(the grid's size\), got values in 4..9"),
    ([4, 4, 4], [5, 5, 50000], r"m_len must lie in 1..5"),
    ([4, 0, 4], [5, 5, 5], r"n_len must lie in 1..4"),
])
def test_the_engine_refuses_lengths_beyond_the_grid(backend, n_len, m_len, match):
    """solve indexes the grid with the lengths: never beyond it (the C++ kernel read and wrote there)."""
    cost = torch.randn(3, 1, 4, 5, dtype=torch.float64)
    n_len, m_len = torch.tensor(n_len), torch.tensor(m_len)
    for run in (solve, solve_alignment):
        with pytest.raises(ValueError, match=match):
            run(cost, SOFT_DTW, 0.1, n_len, m_len, backend=backend)
    if backend == "cpu" and len(n_len) == 3:  # unchecked, the C++ kernel still never leaves the grid
        with value_checks(False), pytest.raises(RuntimeError, match="outside the grid's 1..4 x 1..5"):
            solve(cost, SOFT_DTW, 0.1, n_len, m_len, backend=backend)
    with pytest.raises(ValueError, match=r"cost must be a \(B, S, N, M\) tensor with S = 2"):
        solve(cost, DROP_DTW, 0.1, torch.tensor([4, 4, 4]), torch.tensor([5, 5, 5]), backend=backend)


@pytest.mark.parametrize("fields, match", [
    (dict(final=(1,)), r"final must name states in 0..0, got \(1,\)"),
    (dict(final=()), "final must name states"),
    (dict(starts=("corner", "left")), "one entry per state"),
    (dict(starts=("top",)), "starts must be None, 'corner', 'left' or 'left_first'"),
    (dict(moves=((Move(1, 1, 1),),)), r"each from a state in 0..0"),
    (dict(moves=((),)), "every state needs moves"),
    (dict(starts=(None,)), r"no move reads a start cell, so every value would be \+inf"),
    (dict(moves=((Move(0, 1, 0), Move(0, 0, 1)),)), r"a 'corner' start is read only by a diagonal move from its state"),
])
def test_a_recursion_that_reads_missing_states_is_refused(fields, match):
    with pytest.raises(ValueError, match=match):
        Recursion(**{"name": "bad", "moves": SOFT_DTW.moves, "starts": SOFT_DTW.starts, "final": SOFT_DTW.final, **fields})


def test_an_unread_start_is_allowed_where_another_one_is_read():
    """State 0's corner is never read (no diagonal move from state 0), state 1's left start is."""
    two = Recursion("two", ((Move(1, 0, 1),), (Move(1, 0, 1), Move(1, 1, 1))), ("corner", "left"), (0, 1))
    value = solve(torch.zeros(1, 2, 3, 3, dtype=torch.float64), two, 0.0, torch.tensor([3]), torch.tensor([3]),
                  backend="torch")
    assert torch.isfinite(value).all()


def test_an_unreachable_pair_gets_no_gradient_soft_or_hard(backend):
    """Without value checks, a pair whose lengths put its end cell outside the band is +inf: nothing
    to push back (without lengths the shape tells, and that is checked always)."""
    cost = torch.rand(2, 5, 6, dtype=torch.float64, requires_grad=True)
    lengths = dict(x_lengths=[5, 5], y_lengths=[6, 6])
    with value_checks(False):
        for gamma in (0.1, 0.0):
            value = soft_dtw(cost, gamma, bandwidth=0, backend=backend, **lengths)
            (grad,) = torch.autograd.grad(value.sum(), cost)
            assert torch.isinf(value).all() and not grad.any(), gamma
        assert not dtw_path(cost, bandwidth=0, backend=backend, **lengths).any()


def test_a_nan_cost_leaves_the_other_pairs_smoothing_alone(backend):
    """Without value checks a NaN cost makes its own pair undefined, never another pair (the C++
    smoothing masked missing neighbours by adding +inf, and NaN + inf is NaN)."""
    cost = torch.randn(3, 1, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    dirty = cost.clone()
    dirty[1, 0, 2] = float("nan")
    with value_checks(False):
        for gs in (0.1, 0.0):
            torch.testing.assert_close(smooth_cost(dirty, gs, backend=backend)[[0, 2]],
                                       smooth_cost(cost, gs, backend=backend)[[0, 2]], rtol=0, atol=0)
            torch.testing.assert_close(s2dtw(dirty, 0.1, gs, backend=backend)[[0, 2]],
                                       s2dtw(cost, 0.1, gs, backend=backend)[[0, 2]], rtol=0, atol=0)


@pytest.mark.parametrize("kernel", ["soft_dtw", "s2dtw", "otam", "drop_dtw", "smooth_cost"])
def test_a_second_derivative_raises_and_the_first_stays_as_it_was(backend, kernel):
    """The gradient is the expected alignment from a reverse pass, with no derivative of its own: a
    gradient penalty through a kernel raises, where torch's once_differentiable let it run with the
    alignment taken as a constant (a wrong number, silently), even when the outer loss is linear."""
    x = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    y = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    run = {"soft_dtw": lambda c: soft_dtw(c, 0.5, backend=backend),
           "s2dtw": lambda c: s2dtw(c, backend=backend),
           "otam": lambda c: otam(c, backend=backend),
           "drop_dtw": lambda c: drop_dtw(c.T, 0.3, backend=backend),
           "smooth_cost": lambda c: smooth_cost(c, 0.1, backend=backend).sum()}[kernel]
    (first,) = torch.autograd.grad(run(pairwise_cost(x, y, "sqeuclidean")), x)
    (graphed,) = torch.autograd.grad(run(pairwise_cost(x, y, "sqeuclidean")), x, create_graph=True)
    torch.testing.assert_close(graphed.detach(), first, rtol=0, atol=0)
    with pytest.raises(RuntimeError, match="alignment kernels are differentiable once"):
        torch.autograd.grad(graphed.pow(2).sum(), x)
