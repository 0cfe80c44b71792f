"""The explorer's callbacks, in process: moving a control changes the figure's data."""
import warnings

import plotly.graph_objects as go
import pytest
import torch

from vtbench.viz import explorer as explorer_module
from vtbench.viz.alignments import KERNEL_TITLES, Pair
from vtbench.viz.explorer import USES, AlignmentExplorer, ToySource
from vtbench.viz.interactive import truth_shapes

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


def labelled_pair(name, clips, sentences):
    """A (clips, sentences) pair whose labels and diagonal ground truth say which pair they belong to."""
    similarity = torch.linspace(-1, 1, clips * sentences, dtype=torch.float64).reshape(clips, sentences)
    return Pair(name, similarity, torch.eye(clips, sentences, dtype=torch.bool),
                [f"{name} clip {i}" for i in range(clips)], [f"{name} sentence {j}" for j in range(sentences)])


class TallAndWide:
    """A: 6 clips x 3 sentences (Drop-DTW can align it); B: 3 x 5 (it cannot); C: a damaged run
    whose pair fails ``failures`` times, then loads as a 4 x 2 pair."""

    models = ["m"]
    videos = ["A", "B", "C"]

    def __init__(self, failures=10**9):
        self.failures = failures

    def pair(self, model, video):
        if video == "C":
            if self.failures > 0:
                self.failures -= 1
                raise RuntimeError("damaged run")
            return labelled_pair("C", 4, 2)
        return labelled_pair(video, 6, 3) if video == "A" else labelled_pair(video, 3, 5)


def assert_shows(explorer, pair):
    """Every part of the figure (data, axes, labels, ground truth, title) belongs to ``pair``."""
    n, m = pair.similarity.shape
    assert explorer.pair is pair
    assert explorer.figure.layout.title.text.startswith(f"{pair.name}: {KERNEL_TITLES[explorer.alignment.kernel]}")
    for trace in explorer.figure.data:
        assert (len(trace.z), len(trace.z[0])) == (n, m)
        assert list(trace.x) == list(range(m)) and list(trace.y) == list(range(n))
    assert list(explorer.figure.layout.xaxis.ticktext) == pair.col_labels
    assert list(explorer.figure.layout.xaxis3.ticktext) == pair.col_labels
    assert list(explorer.figure.layout.yaxis.ticktext) == pair.row_labels
    assert [shape.to_plotly_json() for shape in explorer.figure.layout.shapes] == \
        [go.layout.Shape(shape).to_plotly_json() for shape in truth_shapes(pair)]


def test_a_video_the_kernel_rejects_is_redrawn_whole_once_a_setting_allows_it():
    explorer = AlignmentExplorer(TallAndWide(), kernel="drop_dtw")
    explorer.video.value = "B"  # 3 clips, 5 sentences: Drop-DTW refuses
    assert "at least as many clips" in explorer.status.value
    assert "cannot draw video B" in explorer.status.value and "still shows A, Drop-DTW" in explorer.status.value
    assert_shows(explorer, explorer._pair("m", "A"))  # the figure kept A whole
    explorer.kernel.value = "soft_dtw"
    assert_shows(explorer, explorer._pair("m", "B"))  # B's data with B's labels and ground truth
    assert explorer.status.value.startswith("B: 3 clips x 5 sentences; soft-DTW")


def test_a_video_that_fails_to_load_keeps_its_error_and_is_retried():
    explorer = AlignmentExplorer(TallAndWide(failures=2), kernel="dtw")
    explorer.video.value = "C"
    assert "RuntimeError: damaged run" in explorer.status.value and "still shows A" in explorer.status.value
    explorer.kernel.value = "soft_dtw"  # the dropdown says C: no drawing of A may replace the error
    assert "RuntimeError: damaged run" in explorer.status.value and "still shows A, DTW" in explorer.status.value
    assert_shows(explorer, explorer._pair("m", "A"))
    explorer.gamma.value = 1.0  # the source has recovered: the next change draws C
    assert_shows(explorer, explorer._pair("m", "C"))
    assert explorer.status.value.startswith("C: 4 clips x 2 sentences")


def test_going_back_to_the_shown_video_clears_the_error():
    explorer = AlignmentExplorer(TallAndWide(), kernel="dtw")
    explorer.video.value = "C"
    explorer.video.value = "A"
    assert explorer.status.value.startswith("A: 6 clips x 3 sentences; DTW")
    assert_shows(explorer, explorer._pair("m", "A"))


def test_any_error_of_a_kernel_is_reported(monkeypatch):
    explorer = AlignmentExplorer(ToySource(), video="irrelevant clips")
    before = z(explorer, 1)

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(explorer_module, "align", broken)
    explorer.gamma.value = 2.0
    assert "RuntimeError: out of memory" in explorer.status.value
    assert z(explorer, 1) == before and explorer.alignment.settings["gamma"] == 0.1


@pytest.mark.parametrize("name, value, allowed", [
    ("gamma", 100, "between 0.001 and 10"), ("gamma", 0, "between 0.001 and 10"),
    ("smooth_gamma", 1e-4, "between 0.001 and 10"), ("skip_cost", 5, "between -1 and 2"),
    ("skip_cost", -1.5, "between -1 and 2"), ("gamma", float("nan"), "between 0.001 and 10"),
])
def test_a_setting_the_slider_cannot_show_is_rejected(name, value, allowed):
    with pytest.raises(ValueError, match=f"{name} must be {allowed}, the range of its slider") as error:
        AlignmentExplorer(ToySource(), **{name: value})
    if name == "gamma" and value == 0:
        assert "hard path" in str(error.value)


def test_the_first_alignment_uses_the_sliders_values():
    explorer = AlignmentExplorer(ToySource(), gamma=10, smooth_gamma=0.001, skip_cost=-1)
    assert explorer.alignment.settings == explorer.settings == {"gamma": 10.0, "smooth_gamma": 0.001, "skip_cost": -1.0}


def test_the_explorer_opens_and_reports_a_first_video_the_kernel_rejects():
    class WideFirst(TallAndWide):
        videos = ["B", "A"]

    explorer = AlignmentExplorer(WideFirst(), kernel="drop_dtw")
    assert "at least as many clips" in explorer.status.value and "nothing is drawn yet" in explorer.status.value
    assert explorer.pair is None and not explorer.figure.data
    explorer._repr_mimebundle_()  # it can be displayed
    explorer.kernel.value = "dtw"
    assert_shows(explorer, explorer._pair("m", "B"))


def test_the_explorer_opens_and_reports_a_first_video_that_fails_to_load():
    class DamagedFirst(TallAndWide):
        videos = ["C", "A"]

    explorer = AlignmentExplorer(DamagedFirst(failures=1), kernel="dtw")
    assert "RuntimeError: damaged run" in explorer.status.value and "nothing is drawn yet" in explorer.status.value
    explorer.gamma.value = 1.0  # retried: the source has recovered
    assert_shows(explorer, explorer._pair("m", "C"))


def test_the_widget_shows_the_figure_with_its_traces_from_the_start():
    """A FigureWidget sends the browser the traces it holds when first displayed (``_widget_data``),
    later changes as messages: the first drawing must be a figure built with its traces."""
    explorer = AlignmentExplorer(ToySource())
    assert explorer.widget.children[-1] is explorer.figure
    assert len(explorer.figure._widget_data) == 3 and explorer.figure._widget_data[0]["z"]

    class WideFirst(TallAndWide):
        videos = ["B", "A"]

    explorer = AlignmentExplorer(WideFirst(), kernel="drop_dtw")
    explorer.kernel.value = "dtw"
    assert explorer.widget.children[-1] is explorer.figure
    assert len(explorer.figure._widget_data) == 3 and explorer.figure._widget_data[0]["z"]
