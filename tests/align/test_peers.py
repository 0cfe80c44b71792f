"""Independent peers as oracles: tslearn (numpy) and pysdtw (numba) on random inputs."""
import numpy as np
import pytest
import torch

from vtbench.align import pairwise_cost, soft_dtw, soft_dtw_alignment

tslearn_metrics = pytest.importorskip("tslearn.metrics")
pysdtw = pytest.importorskip("pysdtw")


@pytest.mark.parametrize("gamma", [0.01, 0.1, 1.0, 10.0])
def test_tslearn_value_and_gradient(gamma, backend):
    rs = np.random.RandomState(7)
    for n, m in [(5, 7), (12, 9), (1, 4)]:
        C = rs.rand(n, m) * 4
        peer = tslearn_metrics.SoftDTW(C, gamma=gamma)
        value = peer.compute()
        E = peer.grad()
        t = torch.tensor(C)
        assert soft_dtw(t, gamma, backend=backend).item() == pytest.approx(value, rel=1e-9, abs=1e-9)
        assert np.allclose(soft_dtw_alignment(t, gamma, backend=backend).numpy(), E, atol=1e-8)


@pytest.mark.parametrize("gamma", [0.1, 1.0])
def test_pysdtw_value_and_gradient_on_a_batch(gamma, backend):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(6, 10, 3, dtype=torch.float64, generator=g).requires_grad_()
    y = torch.randn(6, 13, 3, dtype=torch.float64, generator=g)
    peer = pysdtw.SoftDTW(gamma=gamma, use_cuda=False)
    (peer_grad,) = torch.autograd.grad(peer(x, y).sum(), x)
    ours = soft_dtw(pairwise_cost(x, y, "sqeuclidean"), gamma, backend=backend)
    (our_grad,) = torch.autograd.grad(ours.sum(), x)
    # pysdtw stores its table R in float32 whatever the input dtype, hence the tolerance
    assert torch.allclose(ours, peer(x, y).detach(), rtol=1e-5, atol=1e-5)
    assert torch.allclose(our_grad, peer_grad, rtol=1e-3, atol=1e-3)
