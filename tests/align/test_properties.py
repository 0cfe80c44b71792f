"""Property tests over random shapes, lengths and gammas: finite values and gradients, every
backend equal to the torch reference, and the expected alignment's marginal bounds."""
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vtbench.align import drop_dtw, otam, s2dtw, soft_dtw, soft_dtw_alignment

from .conftest import CPU_BACKENDS

problems = st.tuples(
    st.integers(1, 3), st.integers(1, 9), st.integers(1, 9),
    st.sampled_from([0.0, 1e-3, 0.05, 0.5, 5.0]), st.integers(0, 2**31 - 1),
)


def _inputs(batch, n, m, seed):
    g = torch.Generator().manual_seed(seed)
    cost = torch.randn(batch, n, m, dtype=torch.float64, generator=g) * 3
    x_len = torch.randint(1, n + 1, (batch,), generator=g)
    y_len = torch.randint(1, m + 1, (batch,), generator=g)
    drop = torch.rand(batch, m, dtype=torch.float64, generator=g)
    return cost, x_len, y_len, drop


def _value_and_grad(fn, cost):
    leaf = cost.clone().requires_grad_()
    value = fn(leaf)
    (grad,) = torch.autograd.grad(value.sum(), leaf)
    return value, grad


@settings(max_examples=40, deadline=None)
@given(problems)
def test_every_backend_agrees_with_the_reference_and_stays_finite(problem):
    batch, n, m, gamma, seed = problem
    cost, x_len, y_len, drop = _inputs(batch, n, m, seed)
    kernels = {
        "soft_dtw": lambda c, b: soft_dtw(c, gamma, x_lengths=x_len, y_lengths=y_len, backend=b),
        "otam": lambda c, b: otam(c, gamma, x_lengths=x_len, y_lengths=y_len, backend=b),
        "s2dtw": lambda c, b: s2dtw(c, gamma, 0.1, 0.5, x_lengths=x_len, y_lengths=y_len, backend=b),
        "drop_dtw": lambda c, b: drop_dtw(c, drop, gamma, x_lengths=torch.minimum(x_len, y_len), y_lengths=y_len, backend=b),
    }
    for name, kernel in kernels.items():
        ref_value, ref_grad = _value_and_grad(lambda c: kernel(c, "torch"), cost)
        assert torch.isfinite(ref_value).all() and torch.isfinite(ref_grad).all(), name
        for backend in CPU_BACKENDS[1:]:
            value, grad = _value_and_grad(lambda c: kernel(c, backend), cost)
            assert torch.allclose(value, ref_value, rtol=1e-9, atol=1e-9), (name, backend)
            assert torch.allclose(grad, ref_grad, rtol=1e-7, atol=1e-9), (name, backend)


@settings(max_examples=40, deadline=None)
@given(problems)
def test_expected_alignment_marginals(problem):
    batch, n, m, gamma, seed = problem
    cost, x_len, y_len, _ = _inputs(batch, n, m, seed)
    for backend in CPU_BACKENDS:
        E = soft_dtw_alignment(cost, gamma, x_lengths=x_len, y_lengths=y_len, backend=backend)
        for b in range(batch):
            block = E[b, : x_len[b], : y_len[b]]
            assert (block >= -1e-12).all() and (block <= 1 + 1e-9).all()
            assert (block.sum(1) >= 1 - 1e-9).all() and (block.sum(0) >= 1 - 1e-9).all()
            total = block.sum().item()
            assert max(x_len[b], y_len[b]) - 1e-9 <= total <= x_len[b] + y_len[b] - 1 + 1e-9
            outside = torch.ones_like(E[b], dtype=torch.bool)
            outside[: x_len[b], : y_len[b]] = False
            assert (E[b][outside] == 0).all()  # nothing outside the lengths
