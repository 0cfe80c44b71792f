"""The alignment kernels against independent oracles, identities and limits (METHODS.md 1)."""
import math

import numpy as np
import pytest
import torch

from vtbench.align import (
    drop_dtw, dtw, dtw_path, expected_alignment, otam, pairwise_cost, s2dtw, s2dtw_grid, soft_dtw,
    soft_dtw_alignment,
)

from .oracles import (
    brute_soft_dtw, delannoy, monotone_paths, scalar_drop_dtw, scalar_otam, scalar_s2dtw, scalar_soft_dtw,
)


def oracle_cost():
    rs = np.random.RandomState(0)
    X, Y = rs.randn(5, 4), rs.randn(6, 4)
    return torch.tensor(((X[:, None] - Y[None]) ** 2).sum(-1))


def test_published_oracle_values(backend):
    C = oracle_cost()
    assert dtw(C, backend=backend).item() == pytest.approx(63.94357673585416, abs=1e-10)
    expected = {0.1: 63.940001676610855, 1: 62.96537826289487, 10: 23.76902634903082, 100: -555.7120356458902}
    for gamma, value in expected.items():
        assert soft_dtw(C, gamma, backend=backend).item() == pytest.approx(value, rel=1e-12)


def test_tslearn_doctest_value(backend):
    x, y = torch.tensor([1.0, 2, 2, 3], dtype=torch.float64), torch.tensor([1.0, 2, 3, 4], dtype=torch.float64)
    C = (x[:, None] - y[None]) ** 2
    assert soft_dtw(C, 1.0, backend=backend).item() == pytest.approx(-0.8954437807217475, rel=1e-12)


def test_pairwise_cost_matches_the_oracle_and_the_direct_formula():
    rs = np.random.RandomState(0)
    X, Y = torch.tensor(rs.randn(5, 4)), torch.tensor(rs.randn(6, 4))
    assert torch.allclose(pairwise_cost(X, Y, "sqeuclidean"), oracle_cost())
    assert torch.allclose(pairwise_cost(X, Y, "dot"), -X @ Y.T)
    cos = torch.nn.functional.cosine_similarity(X[:, None], Y[None], dim=-1)
    assert torch.allclose(pairwise_cost(X, Y, "cosine"), 1 - cos)


@pytest.mark.parametrize("metric", ["cosine", "dot", "sqeuclidean"])
def test_all_pairs_cost_is_every_pair_of_the_direct_form(metric):
    """all_pairs=True (one matmul) equals the per-pair cost for every (x, y), values and
    gradients, and is contiguous, as the kernels read it."""
    xs = torch.randn(3, 5, 4, dtype=torch.float64, requires_grad=True)
    ys = torch.randn(2, 6, 4, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(3, 2, 5, 6, dtype=torch.float64)
    every = pairwise_cost(xs, ys, metric, all_pairs=True)
    assert every.shape == (3, 2, 5, 6) and every.is_contiguous()
    direct = torch.stack([torch.stack([pairwise_cost(x, y, metric) for y in ys]) for x in xs])
    torch.testing.assert_close(every, direct, rtol=1e-12, atol=1e-12)
    grads = torch.autograd.grad((every * weights).sum(), (xs, ys))
    want = torch.autograd.grad((direct * weights).sum(), (xs, ys))
    for g, w in zip(grads, want):
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n,m", [(1, 1), (1, 4), (3, 3), (4, 2), (5, 4)])
@pytest.mark.parametrize("gamma", [0.0, 0.1, 1.0, 10.0])
def test_soft_dtw_equals_brute_force_enumeration(n, m, gamma, backend):
    C = torch.rand(n, m, dtype=torch.float64, generator=torch.Generator().manual_seed(n * 10 + m)) * 3
    value, E = brute_soft_dtw(C.numpy(), gamma)
    assert len(monotone_paths(n, m)) == delannoy(n - 1, m - 1)
    assert soft_dtw(C, gamma, backend=backend).item() == pytest.approx(value, rel=1e-10, abs=1e-10)
    assert np.allclose(soft_dtw_alignment(C, gamma, backend=backend).numpy(), E, atol=1e-9)


@pytest.mark.parametrize("gamma", [0.0, 0.1, 1.0])
def test_variants_equal_their_direct_restatement(gamma, backend):
    g = torch.Generator().manual_seed(1)
    for n, m in [(1, 1), (1, 5), (4, 1), (3, 7), (6, 4)]:
        C = torch.randn(n, m, dtype=torch.float64, generator=g)
        assert otam(C, gamma, backend=backend).item() == pytest.approx(scalar_otam(C.numpy(), gamma), rel=1e-10, abs=1e-10)
        assert soft_dtw(C, gamma, backend=backend).item() == pytest.approx(scalar_soft_dtw(C.numpy(), gamma), rel=1e-10, abs=1e-10)
        if n <= m:
            drop = torch.rand(m, dtype=torch.float64, generator=g)
            want = scalar_drop_dtw(C.numpy(), drop.numpy(), gamma)
            assert drop_dtw(C, drop, gamma, backend=backend).item() == pytest.approx(want, rel=1e-10, abs=1e-10)
        for gs in (0.0, 0.1):
            want = scalar_s2dtw(C.numpy(), gamma, gs, 0.5)
            got = s2dtw(C, gamma, smooth_gamma=gs, skip_cost=0.5, backend=backend).item()
            assert got == pytest.approx(want, rel=1e-10, abs=1e-10)


def test_soft_dtw_bounds_and_limits(backend):
    C = torch.rand(6, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    hard = dtw(C, backend=backend).item()
    paths = delannoy(5, 7)
    for gamma in (1e-3, 0.1, 1.0, 10.0):
        soft = soft_dtw(C, gamma, backend=backend).item()
        assert hard - gamma * math.log(paths) - 1e-9 <= soft <= hard + 1e-12
    assert soft_dtw(C, 1e-4, backend=backend).item() == pytest.approx(hard, abs=1e-3)


def test_derivative_in_gamma_is_minus_the_path_entropy(backend):
    C = torch.rand(4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    gamma, h = 0.5, 1e-6
    slope = (soft_dtw(C, gamma + h, backend=backend) - soft_dtw(C, gamma - h, backend=backend)).item() / (2 * h)
    costs = np.array([sum(C[i, j].item() for i, j in p) for p in monotone_paths(4, 5)])
    logits = -costs / gamma
    p = np.exp(logits - logits.max())
    p /= p.sum()
    entropy = -(p * np.log(p)).sum()
    assert slope == pytest.approx(-entropy, rel=1e-5)


def test_transposition_and_flip_symmetry(backend):
    C = torch.rand(3, 7, 9, dtype=torch.float64)
    for gamma in (0.0, 0.3):
        value = soft_dtw(C, gamma, backend=backend)
        assert torch.allclose(soft_dtw(C.transpose(-1, -2), gamma, backend=backend), value)
        assert torch.allclose(soft_dtw(C.flip(-1, -2), gamma, backend=backend), value)


def test_expected_alignment_properties(backend):
    C = torch.rand(2, 9, 6, dtype=torch.float64)
    for gamma in (0.0, 0.05, 1.0):
        E = soft_dtw_alignment(C, gamma, backend=backend)
        assert (E >= -1e-12).all() and (E <= 1 + 1e-12).all()
        assert torch.allclose(E[:, 0, 0], torch.ones(2, dtype=E.dtype))
        assert torch.allclose(E[:, -1, -1], torch.ones(2, dtype=E.dtype))
        assert (E.sum(-1) >= 1 - 1e-9).all() and (E.sum(-2) >= 1 - 1e-9).all()
        total = E.sum((-1, -2))
        assert (total >= 9 - 1e-9).all() and (total <= 9 + 6 - 1 + 1e-9).all()
    path = dtw_path(C, backend=backend)
    assert set(path.unique().tolist()) <= {0.0, 1.0}
    assert torch.allclose((path * C).sum((-1, -2)), dtw(C, backend=backend))


@pytest.mark.parametrize("gamma", [1e-13, 1e-16, 1e-300])
def test_expected_alignment_stays_a_probability_for_gammas_below_r_s_resolution(gamma, backend):
    """|R| ~ 30, so R's rounding (~1e-15) exceeds these gammas: weights taken from R (exp((R - C -
    R_pred) / gamma)) grew to 1e15 and inf; normalised ones give the hard path (ties split)."""
    C = torch.rand(20, 9, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 10
    torch.testing.assert_close(soft_dtw_alignment(C, gamma, backend=backend), dtw_path(C, backend=backend),
                               rtol=0, atol=1e-12)
    tied = torch.randint(0, 3, (20, 9, 7), generator=torch.Generator().manual_seed(1)).double() * 1e6
    E = soft_dtw_alignment(tied, gamma, backend=backend)
    assert (E >= 0).all() and (E <= 1 + 1e-12).all() and (E[:, -1, -1] == 1).all()
    for d in range(9 + 7 - 1):  # a path crosses each anti-diagonal at most once: the mass on one is <= 1
        i = torch.arange(max(0, d - 6), min(8, d) + 1)
        assert (E[:, i, d - i].sum(-1) <= 1 + 1e-12).all(), d


def test_expected_alignment_is_the_gradient(backend):
    C = torch.rand(5, 4, dtype=torch.float64)
    via_autograd = expected_alignment(lambda c: soft_dtw(c, 0.3, backend=backend), C)
    assert torch.allclose(via_autograd, soft_dtw_alignment(C, 0.3, backend=backend))


@pytest.mark.parametrize("kernel", ["soft_dtw", "otam", "s2dtw", "drop_dtw"])
def test_float64_gradcheck(kernel, backend):
    g = torch.Generator().manual_seed(4)
    C = torch.randn(2, 3, 4, 5, dtype=torch.float64, generator=g).requires_grad_()
    drop = (torch.rand(5, dtype=torch.float64, generator=g) + 0.1).requires_grad_()
    x_len = torch.tensor([[4, 2, 3], [1, 4, 3]])
    y_len = torch.tensor([[5, 5, 3], [2, 4, 4]])
    fns = {
        "soft_dtw": lambda c, d: soft_dtw(c, 0.7, x_lengths=x_len, y_lengths=y_len, backend=backend),
        "otam": lambda c, d: otam(c, 0.3, x_lengths=x_len, y_lengths=y_len, backend=backend),
        "s2dtw": lambda c, d: s2dtw(c, 0.2, 0.3, 0.4, x_lengths=x_len, y_lengths=y_len, backend=backend),
        "drop_dtw": lambda c, d: drop_dtw(c, d, 0.4, x_lengths=x_len, y_lengths=y_len, backend=backend),
    }
    assert torch.autograd.gradcheck(fns[kernel], (C, drop))


@pytest.mark.parametrize("kernel", ["soft_dtw", "otam", "s2dtw", "drop_dtw"])
@pytest.mark.parametrize("gamma", [0.0, 0.2])
def test_padded_batches_equal_pair_by_pair(kernel, gamma, backend):
    g = torch.Generator().manual_seed(5)
    C = torch.randn(4, 6, 7, dtype=torch.float64, generator=g)
    C_padded = C.clone()
    drop = torch.rand(4, 7, dtype=torch.float64, generator=g)
    x_len, y_len = torch.tensor([6, 2, 4, 1]), torch.tensor([7, 3, 4, 5])
    for b in range(4):  # garbage in the padding must not matter
        C_padded[b, x_len[b]:, :] = 1e6
        C_padded[b, :, y_len[b]:] = float("nan")
    fn = {
        "soft_dtw": lambda c, **kw: soft_dtw(c, gamma, backend=backend, **kw),
        "otam": lambda c, **kw: otam(c, gamma, backend=backend, **kw),
        "s2dtw": lambda c, **kw: s2dtw(c, gamma, backend=backend, **kw),
        "drop_dtw": lambda c, d=None, **kw: drop_dtw(c, d, gamma, backend=backend, **kw),
    }[kernel]
    extra = (lambda b: {"d": drop[b, : y_len[b]]}) if kernel == "drop_dtw" else (lambda b: {})
    padded_in = C_padded.clone().requires_grad_()
    batched = fn(padded_in, **({"d": drop} if kernel == "drop_dtw" else {}), x_lengths=x_len, y_lengths=y_len)
    batched.sum().backward()
    for b in range(4):
        single_in = C[b, : x_len[b], : y_len[b]].clone().requires_grad_()
        single = fn(single_in, **extra(b))
        single.backward()
        assert batched[b].item() == pytest.approx(single.item(), rel=1e-10, abs=1e-10)
        grad = padded_in.grad[b]
        assert torch.allclose(grad[: x_len[b], : y_len[b]], single_in.grad, atol=1e-10)
        assert grad[x_len[b]:].abs().sum() == 0 and grad[:, y_len[b]:].abs().sum() == 0


def test_band_restricts_paths(backend):
    C = torch.rand(7, 7, dtype=torch.float64)
    C_band = C.clone()
    i, j = torch.meshgrid(torch.arange(7), torch.arange(7), indexing="ij")
    C_band[(i - j).abs() > 1] = 1e9
    assert soft_dtw(C, 0.1, bandwidth=1, backend=backend).item() == pytest.approx(soft_dtw(C_band, 0.1, backend=backend).item())
    assert soft_dtw(C, 0.1, bandwidth=6, backend=backend).item() == pytest.approx(soft_dtw(C, 0.1, backend=backend).item())
    E = soft_dtw_alignment(C, 0.1, bandwidth=1, backend=backend)
    assert E[(i - j).abs() > 1].abs().sum() == 0


def test_drop_dtw_reduces_to_dtw_without_repeats_when_dropping_is_forbidden(backend):
    C = torch.rand(3, 6, dtype=torch.float64)
    inf_drop = torch.full((6,), float("inf"), dtype=torch.float64)
    value = drop_dtw(C, inf_drop, backend=backend).item()
    assert value == pytest.approx(scalar_drop_dtw(C.numpy(), inf_drop.numpy(), 0.0))
    assert value >= dtw(C, backend=backend).item() - 1e-12  # DTW may also repeat steps' clips vertically
    free = drop_dtw(C, torch.zeros(6, dtype=torch.float64), backend=backend).item()
    assert free <= value  # dropping for free can only help


def test_s2dtw_skips_an_irrelevant_clip_that_dtw_must_pay_for(backend):
    # video: clips 0, 1, X, 2; narration: sentences 0, 1, 2; clip X costs 5 against every sentence.
    v = torch.eye(4, dtype=torch.float64)[[0, 1, 3, 2]]
    t = torch.eye(4, dtype=torch.float64)[[0, 1, 2]]
    d = pairwise_cost(v, t, "dot")
    d[2] = 5.0
    grid = s2dtw_grid(d, 0.05, 0.5)
    E = soft_dtw_alignment(grid, 0.05, backend=backend)[1::2, 1::2]  # the real cells
    assert E[2].sum() < 1e-3  # the weak alignment walks around the irrelevant clip over skip cells
    assert E[[0, 1, 3], [0, 1, 2]].min() > 0.99  # and still matches the narrated ones
    assert (dtw_path(d, backend=backend)[2] * d[2]).sum() >= 5.0  # plain DTW must pay for it


def test_otam_and_s2dtw_accept_any_lengths(backend):
    for n, m in [(1, 9), (9, 1), (3, 11)]:
        C = torch.randn(n, m, dtype=torch.float64)
        assert torch.isfinite(otam(C, 0.1, backend=backend)) and torch.isfinite(s2dtw(C, backend=backend))
