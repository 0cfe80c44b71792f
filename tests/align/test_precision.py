"""At gamma = 1e-3 on 256 x 256, float32 input keeps the gradient within 1e-6 of float64."""
import pytest
import torch

from vtbench.align import soft_dtw_alignment


@pytest.mark.slow
def test_small_gamma_gradient_matches_float64(backend):
    if backend == "torch":
        pytest.skip("the torch backend runs float32 costs in float64: the oracle itself")
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(256, 8, generator=g), torch.randn(256, 8, generator=g)
    cost32 = torch.cdist(x, y).square()
    cost64 = cost32.double()  # the same float32 values, evaluated in float64: the oracle
    E32 = soft_dtw_alignment(cost32, 1e-3, backend=backend)
    E64 = soft_dtw_alignment(cost64, 1e-3, backend="torch")
    assert E32.dtype == torch.float32
    err = (E32.double() - E64).abs().max() / E64.abs().max()
    assert err < 1e-6
