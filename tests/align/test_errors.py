"""Bad input is a ValueError that names the argument; never a silent inf or NaN."""
import pytest
import torch

from vtbench.align import backends, drop_dtw, dtw_path, otam, pairwise_cost, s2dtw, s2dtw_grid, smooth_cost, soft_dtw, soft_dtw_alignment

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
        (lambda: drop_dtw(torch.rand(6, 3), torch.rand(3)), "x_lengths must not exceed y_lengths"),
        (lambda: drop_dtw(C, torch.rand(7)), "drop_cost must broadcast"),
        (lambda: drop_dtw(C, torch.tensor([0.1, float("nan"), 0.1, 0.1, 0.1])), "drop_cost must be finite"),
        (lambda: drop_dtw(C, torch.ones(5, dtype=torch.int64)), "drop_cost must be a floating-point tensor"),
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
