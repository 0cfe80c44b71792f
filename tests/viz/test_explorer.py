"""The explorer's callbacks, in process: moving a control changes the figure's data."""
import warnings

import pytest

from vtbench.viz.explorer import USES, AlignmentExplorer, ToySource

warnings.filterwarnings("ignore", message="vtbench: the")


def z(explorer, trace):
    return [list(row) for row in explorer.figure.data[trace].z]


@pytest.fixture
def explorer():
    return AlignmentExplorer(ToySource(), video="irrelevant clips")


def test_gamma_slider_changes_the_expected_alignment_only(explorer):
    cost, expected, path = z(explorer, 0), z(explorer, 1), z(explorer, 2)
    explorer.gamma.value = 2.0
    assert z(explorer, 1) != expected
    assert z(explorer, 0) == cost and z(explorer, 2) == path  # the cost and the hard path stay
    assert explorer.alignment.settings["gamma"] == 2.0


def test_skip_and_smoothing_sliders_move_s2dtw(explorer):
    path = z(explorer, 2)
    explorer.skip_cost.value = -0.3  # skipping becomes cheaper than matching background
    assert z(explorer, 2) != path
    expected = z(explorer, 1)
    explorer.smooth_gamma.value = 1.0
    assert z(explorer, 1) != expected


def test_kernel_dropdown_switches_kernel_and_greys_out_unused_settings(explorer):
    before = z(explorer, 1)
    explorer.kernel.value = "drop_dtw"
    assert z(explorer, 1) != before
    assert "Drop-DTW" in explorer.figure.layout.title.text and "Drop-DTW" in explorer.status.value
    assert explorer.smooth_gamma.disabled and not explorer.skip_cost.disabled and not explorer.gamma.disabled
    explorer.kernel.value = "dtw"
    assert all(getattr(explorer, name).disabled for name in ("gamma", "smooth_gamma", "skip_cost"))
    assert USES["dtw"] == set()


def test_video_picker_replaces_the_pair_and_its_ground_truth(explorer):
    shapes = len(explorer.figure.layout.shapes)
    explorer.video.value = "unnarrated step"
    assert len(explorer.figure.data[0].z) == 15 and len(explorer.figure.data[0].z[0]) == 4
    assert len(explorer.figure.layout.shapes) != shapes
    assert list(explorer.figure.layout.xaxis.ticktext) == explorer.pair.col_labels


def test_a_failing_kernel_reports_and_keeps_the_figure():
    class Wide(ToySource):
        videos = ["irrelevant sentence"]

        def pair(self, model, video):
            pair = super().pair(model, video)
            pair.similarity, pair.truth = pair.similarity[:4], pair.truth[:4]  # 4 clips, 6 sentences
            pair.row_labels = pair.row_labels[:4]
            return pair

    explorer = AlignmentExplorer(Wide(), kernel="dtw")
    before = z(explorer, 1)
    explorer.kernel.value = "drop_dtw"
    assert "at least as many clips" in explorer.status.value
    assert z(explorer, 1) == before


def test_model_picker_uses_the_source():
    class TwoModels(ToySource):
        models = ["a", "b"]

        def pair(self, model, video):
            from vtbench.viz import toy_pair
            return toy_pair(video, seed=0 if model == "a" else 1)

    explorer = AlignmentExplorer(TwoModels())
    before = z(explorer, 0)
    explorer.model.value = "b"
    assert z(explorer, 0) != before
