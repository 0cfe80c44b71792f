"""The figures' numbers: each kernel's alignment on the constructed pairs."""
import math
import warnings

import pytest
import torch

from vtbench.align import dtw, s2dtw, soft_dtw
from vtbench.viz import KERNEL_NAMES, TOY_CASES, align, path_accuracy, toy_pair, toy_pairs, truth_mass
from vtbench.viz.tables import format_table, kernel_table

warnings.filterwarnings("ignore", message="vtbench: the")


@pytest.fixture(scope="module")
def pairs():
    return toy_pairs()


def test_toy_pairs_are_seeded_and_shaped(pairs):
    again = toy_pairs()
    for case in TOY_CASES:
        assert torch.equal(pairs[case].similarity, again[case].similarity)
        n, m = pairs[case].similarity.shape
        assert pairs[case].truth.shape == (n, m)
        assert len(pairs[case].row_labels) == n and len(pairs[case].col_labels) == m
    assert not torch.equal(toy_pair("aligned", seed=1).similarity, pairs["aligned"].similarity)
    # background clips and the chat sentence have no ground truth
    assert (pairs["irrelevant clips"].truth.sum(1) == 0).sum() == 9
    assert (pairs["irrelevant sentence"].truth.sum(0) == 0).sum() == 1


@pytest.mark.parametrize("kernel", KERNEL_NAMES)
def test_align_shapes_and_ranges(pairs, kernel):
    pair = pairs["irrelevant clips"]
    result = align(pair, kernel)
    assert result.expected.shape == result.path.shape == pair.similarity.shape
    assert float(result.expected.min()) >= -1e-9 and float(result.expected.max()) <= 1 + 1e-9
    assert set(result.path.unique().tolist()) <= {0.0, 1.0}
    assert math.isfinite(result.value)


def test_align_values_are_the_kernels(pairs):
    pair = pairs["aligned"]
    assert align(pair, "dtw").value == pytest.approx(float(dtw(pair.cost)))
    assert align(pair, "soft_dtw", gamma=0.5).value == pytest.approx(float(soft_dtw(pair.cost, 0.5)))
    assert align(pair, "s2dtw", 0.2, 0.3, 0.4).value == pytest.approx(float(s2dtw(-pair.similarity, 0.2, 0.3, 0.4)))


def test_hard_paths_are_monotone_and_dtw_is_exact_on_the_clean_pair(pairs):
    pair = pairs["aligned"]
    path = align(pair, "dtw").path
    assert path[0, 0] == 1 and path[-1, -1] == 1
    assert path_accuracy(path, pair.truth) == 1.0
    # every clip of a DTW path is matched, in order: its matched columns never decrease
    cols = [int(row.nonzero().max()) for row in path]
    assert cols == sorted(cols)


def test_soft_alignment_sharpens_as_gamma_falls(pairs):
    pair = pairs["irrelevant clips"]
    hot, cold = align(pair, "soft_dtw", gamma=5.0), align(pair, "soft_dtw", gamma=0.001)
    assert torch.allclose(cold.expected, align(pair, "dtw").path, atol=1e-3)
    assert float((hot.expected * (1 - hot.expected)).sum()) > float((cold.expected * (1 - cold.expected)).sum())


def test_drop_dtw_drops_background_and_s2dtw_skips_with_a_low_skip_cost(pairs):
    pair = pairs["irrelevant clips"]
    assert path_accuracy(align(pair, "drop_dtw").path, pair.truth) == 1.0
    assert path_accuracy(align(pair, "dtw").path, pair.truth) < 0.7
    published = align(pair, "s2dtw", skip_cost=0.5).path
    cheap = align(pair, "s2dtw", skip_cost=-0.3).path
    assert cheap[:3].sum() == 0 and published[:3].sum() == 3  # the leading background is skipped


def test_drop_dtw_needs_as_many_clips_as_sentences():
    with pytest.raises(ValueError, match="at least as many clips"):
        align(torch.zeros(2, 3, dtype=torch.float64), "drop_dtw")
    with pytest.raises(ValueError, match="kernel must be one of"):
        align(torch.zeros(2, 3), "nope")


def test_table_and_truth_mass(pairs):
    table = kernel_table({"aligned": pairs["aligned"]}, ["dtw", "drop_dtw"])
    assert table["aligned"]["dtw"]["precision"] == 1.0
    assert truth_mass(align(pairs["aligned"], "dtw").path, pairs["aligned"].truth) == 1.0
    text = format_table({"a": {"dtw": 1.0, "otam": float("nan")}}, row_title="case")
    assert text.splitlines()[0].split() == ["case", "DTW", "OTAM", "(TempCLR)"]
    assert text.splitlines()[2].split() == ["a", "1.00", "-"]
