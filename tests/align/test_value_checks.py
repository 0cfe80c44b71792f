"""value_checks(False): the kernels run without reading tensors' values back from the device (each
read-back is a GPU sync, and none is allowed in a CUDA graph); on by default."""
import pytest
import torch

import vtbench.align as va

from ..readbacks import ReadBacks


def every_kernel(backend):
    g = torch.Generator().manual_seed(0)
    cost = torch.rand(3, 6, 7, generator=g, dtype=torch.float64, requires_grad=True)
    lens = dict(x_lengths=torch.tensor([6, 4, 5]), y_lengths=torch.tensor([7, 7, 5]))
    total = (va.soft_dtw(cost, 0.1, **lens, bandwidth=3, backend=backend).sum()
             + va.s2dtw(cost, **lens, backend=backend).sum() + va.otam(cost, **lens, backend=backend).sum()
             + va.drop_dtw(cost, 0.3, 0.1, **lens, backend=backend).sum())
    total.backward()
    return total.detach(), cost.grad


CHECKS = {"vtbench/align/checks.py", "vtbench/align/variants.py"}


def test_the_checks_read_back_by_default_and_not_when_off(backend):
    with ReadBacks() as on:
        checked = every_kernel(backend)
    assert CHECKS & set(on.where), on.where  # the counter sees them: the test below can fail
    with va.value_checks(False), ReadBacks() as off:
        unchecked = every_kernel(backend)
    assert not CHECKS & set(off.where), off.where
    torch.testing.assert_close(unchecked, checked)  # the same numbers for valid input


def test_unchecked_bad_costs_do_not_raise_and_lengths_are_clamped():
    cost = torch.rand(2, 4, 5, dtype=torch.float64)
    bad = cost.clone()
    bad[0, 1, 1] = float("nan")
    with pytest.raises(ValueError, match="cost must be finite"):
        va.soft_dtw(bad, 0.1)
    with pytest.raises(ValueError, match="x_lengths must lie in 1..4"):
        va.soft_dtw(cost, 0.1, x_lengths=torch.tensor([9, 0]))
    with va.value_checks(False):
        va.soft_dtw(bad, 0.1)  # the value of a pair with a NaN cost is undefined then: no error, no sync
        clamped = va.soft_dtw(cost, 0.1, x_lengths=torch.tensor([9, 0]))
    torch.testing.assert_close(clamped, va.soft_dtw(cost, 0.1, x_lengths=torch.tensor([4, 1])))
    lengths = dict(x_lengths=torch.tensor([4, 4]), y_lengths=torch.tensor([8, 8]))
    with va.value_checks(False):  # unreachable end cells that only the lengths tell: +inf rather than an error
        assert va.soft_dtw(torch.rand(2, 4, 8), 0.1, bandwidth=2, **lengths).isinf().all()
        assert va.s2dtw(torch.rand(2, 4, 8), bandwidth=2, **lengths).isinf().all()
        assert va.drop_dtw(torch.rand(2, 8, 8), 0.3, x_lengths=torch.tensor([8, 8]),
                           y_lengths=torch.tensor([4, 4])).isinf().all()


def test_what_the_shape_tells_is_checked_even_unchecked():
    """Without lengths every pair has the cost's shape: reading it waits for no device, so an
    unreachable end cell is an error even under value_checks(False), never a silent +inf."""
    with va.value_checks(False), ReadBacks() as seen:
        with pytest.raises(ValueError, match=r"bandwidth=2 leaves the end cell unreachable: a pair has \|n - m\| = 4"):
            va.soft_dtw(torch.rand(2, 4, 8), 0.1, bandwidth=2)
        with pytest.raises(ValueError, match=r"\|n - m\| = 4; use bandwidth >= 4"):
            va.s2dtw(torch.rand(2, 4, 8), bandwidth=2)
        with pytest.raises(ValueError, match="cost has 8 rows but 4 columns"):
            va.drop_dtw(torch.rand(2, 8, 4), 0.3)
    assert not CHECKS & set(seen.where), seen.where
    assert va.soft_dtw(torch.rand(0, 4, 8), 0.1, bandwidth=2).shape == (0,)  # no pair, nothing unreachable


def test_the_setting_is_restored_and_must_be_a_bool():
    with pytest.raises(RuntimeError):
        with va.value_checks(False):
            raise RuntimeError("inside")
    with pytest.raises(ValueError, match="cost must be finite"):
        va.soft_dtw(torch.tensor([[float("inf")]]), 0.1)  # back on after the exception
    assert va.set_value_checks(False) is True and va.set_value_checks(True) is False
    with pytest.raises(ValueError, match="enabled must be True or False"):
        va.set_value_checks("no")
