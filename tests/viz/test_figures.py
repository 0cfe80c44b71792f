"""Matplotlib and plotly figures: they draw what they are given, and HTML shares one plotly.js."""
import warnings

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from vtbench.viz import (KERNEL_NAMES, align, alignment_figure, plot_alignments, plot_case_grid,  # noqa: E402
                         plot_sweep, save_figure, save_html, toy_pair, toy_pairs)
from vtbench.viz.heatmaps import truth_runs  # noqa: E402
from vtbench.viz.interactive import truth_shapes  # noqa: E402

warnings.filterwarnings("ignore", message="vtbench: the")


def test_truth_runs_are_boxes_per_sentence():
    pair = toy_pair("irrelevant clips")
    assert truth_runs(pair.truth) == [(0, 3, 5), (1, 6, 8), (2, 12, 14), (3, 15, 17), (4, 18, 20)]


def test_matplotlib_panels(tmp_path):
    pair = toy_pair("swapped steps")
    fig = plot_alignments(pair, [align(pair, k) for k in KERNEL_NAMES])
    assert len([ax for ax in fig.axes if ax.images]) == 1 + len(KERNEL_NAMES)
    path = save_figure(fig, tmp_path / "sub" / "panels.png")
    assert path.stat().st_size > 10_000 and path.read_bytes()[:4] == b"\x89PNG"
    grid = plot_case_grid(toy_pairs(), ["dtw", "s2dtw"])
    assert len([ax for ax in grid.axes if ax.images]) == 5 * 3
    costs = [ax.images[0].get_clim() for ax in grid.axes if ax.images and ax.get_title().endswith("cost")]
    assert costs == [(0, 2)] * 5  # one colour scale for every cost panel, with its colour bar
    assert sorted(ax.get_ylabel() for ax in grid.axes if not ax.images) == ["cost 1 - cos (bright: low)",
                                                                            "expected alignment"]
    sweep = plot_sweep(pair, "soft_dtw", "gamma", [0.1, 1.0])
    assert [ax.get_title().splitlines()[0] for ax in sweep.axes if ax.images] == ["gamma = 0.1", "gamma = 1"]
    plt.close("all")


def test_a_failed_save_leaves_the_previous_figure(tmp_path, monkeypatch):
    """A full disk or an interrupt mid-save: the old PNG stays whole, no temporary file is left."""
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    path = save_figure(fig, tmp_path / "line.png")
    before = path.read_bytes()

    def full_disk(f, **kwargs):
        f.write(b"\x89PNG half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fig, "savefig", full_disk)
    with pytest.raises(OSError, match="No space left"):
        save_figure(fig, path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["line.png"]
    plt.close(fig)


def test_plotly_figure_has_three_heatmaps_and_the_truth(tmp_path):
    pair = toy_pair("irrelevant clips")
    fig = alignment_figure(pair, align(pair, "s2dtw"))
    assert [t.type for t in fig.data] == ["heatmap"] * 3
    assert len(fig.data[0].z) == 24 and len(fig.data[0].z[0]) == 5
    assert len(fig.layout.shapes) == 3 * 5 == len(truth_shapes(pair))
    assert "S2DTW" in fig.layout.title.text
    # one colour scale for every pair: the cost's whole range, the alignments' 0..1
    assert [(t.zmin, t.zmax) for t in fig.data] == [(0, 2), (0, 1), (0, 1)]
    first = save_html(fig, tmp_path / "a.html")
    save_html(fig, tmp_path / "b.html")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.html", "b.html", "plotly.min.js"]
    html = first.read_text()
    assert 'src="plotly.min.js"' in html and len(html) < 200_000  # the library is not inlined


def test_alignment_settings_are_the_ones_a_method_trained_with():
    from vtbench.train import make_config
    from vtbench.viz import alignment_settings

    assert alignment_settings(make_config("vt-twins", "quick", ["skip_cost=-0.2"]).loss_args) == {
        "gamma": 0.1, "smooth_gamma": 0.1, "skip_cost": -0.2, "drop_cost": 0.5}  # tau is not a drop cost
    assert alignment_settings(make_config("tempclr", "quick", ["gamma=0.5"]).loss_args) == {"gamma": 0.5, "drop_cost": 0.5}
    assert alignment_settings(make_config("infonce", "quick").loss_args) == {"drop_cost": 0.5}
    pair = toy_pair("irrelevant clips")
    dropped = align(pair, "drop_dtw", skip_cost=-0.2, drop_cost=0.5)
    assert dropped.settings["drop_cost"] == 0.5 and torch.equal(dropped.path, align(pair, "drop_dtw", skip_cost=0.5).path)
    assert plot_case_grid({"a": pair}, []).axes  # the cost alone: no expected-alignment colour bar to draw


def test_each_method_has_one_colour_in_the_comparison_and_the_ablation():
    from matplotlib.colors import to_hex

    from vtbench.viz.results import plot_ablation, plot_comparison

    metric = "step_localisation/recall"
    labels = ["untrained", "infonce", "vt-twins", "my-method"]
    summary = {label: {metric: (0.1 * k, 0.01, 2)} for k, label in enumerate(labels)}
    bars = plot_comparison(summary, [metric], labels).axes[0].patches
    rows = [{"method": m, "noise": noise, metric: 0.5, f"{metric} std": 0.0}
            for m in labels[:0:-1] for noise in (0.0, 1.0)]  # another order, no untrained
    lines = {line.get_label(): to_hex(line.lines[0].get_color()) for line in plot_ablation(rows, [metric]).axes[0].containers}
    colours = {label: to_hex(bar.get_facecolor()) for label, bar in zip(labels, bars)}
    assert all(lines[m] == colours[m] for m in labels[1:]), (lines, colours)
    assert len(set(colours.values())) == len(labels)
    from vtbench.viz.results import METHOD_COLOURS, method_colours

    ten = method_colours([*METHOD_COLOURS, "a", "b", "c", "d"])  # new methods take the free tab10 colours
    assert len({to_hex(c) for c in ten.values()}) == 10
    plt.close("all")


def _metrics(tmp_path, text):
    (tmp_path / "metrics.jsonl").write_text(text)
    return tmp_path


def test_learning_curves_read_a_killed_run_and_say_what_they_average(tmp_path):
    from vtbench.viz.training import plot_learning_curve, read_metrics

    lines = "".join(f'{{"step": {s}, "loss": {3.0 / s}, "corr": {s}}}\n' for s in (10, 20, 30, 40))
    run = _metrics(tmp_path, lines + '{"step": 50, "lo')  # killed while logging
    with pytest.warns(UserWarning, match="line 5: a record cut short"):
        assert [r["step"] for r in read_metrics(run)] == [10, 20, 30, 40]
    with pytest.warns(UserWarning):
        fig = plot_learning_curve({"run": run}, smooth=3)
    assert fig.get_suptitle() == "each point: the mean of the last 3 logged means"  # both panels are smoothed
    assert fig.axes[0].lines[0].get_ydata()[-1] == pytest.approx((3 / 20 + 3 / 30 + 3 / 40) / 3)
    assert fig.axes[1].lines[0].get_ydata()[-1] == pytest.approx((20 + 30 + 40) / 3 / 10)
    plt.close(fig)
    (tmp_path / "one").mkdir()
    fig = plot_learning_curve(_metrics(tmp_path / "one", '{"step": 2, "loss": 1.0}\n'))
    assert fig.axes[0].get_title() == "training loss" and fig.axes[0].lines[0].get_marker() == "o"
    plt.close(fig)
    (tmp_path / "same").mkdir()  # a statistic equal to the loss throughout: no second panel repeating it
    fig = plot_learning_curve(_metrics(tmp_path / "same", '{"step": 2, "loss": 1.0, "t2v": 1.0}\n'))
    assert len(fig.axes) == 1
    assert fig.get_suptitle() == ""
    plt.close(fig)


def test_learning_curves_leave_counts_out_and_plot_sums_per_what_they_count(tmp_path):
    from vtbench.viz.training import plot_learning_curve

    # Cali-NCE logs score as a sum over its pairs (processes add up), TempCLR counts its videos
    lines = "".join(f'{{"step": {s}, "loss": 1.0, "score": {0.5 * p}, "pairs": {p}, "align_videos": {p}, '
                    f'"align_skipped": 0.0}}\n' for s, p in ((1, 10), (2, 40)))
    fig = plot_learning_curve(_metrics(tmp_path, lines))
    assert [line.get_label() for line in fig.axes[1].lines] == ["score per pair"]
    assert list(fig.axes[1].lines[0].get_ydata()) == [1.0, 1.0]  # 0.5 a pair throughout, whatever the count
    plt.close(fig)


@pytest.mark.parametrize("text, match", [("", "holds no record"),
                                         ('{"step": 1}\nnot json\n{"step": 3}\n', "line 2: not a JSON record")])
def test_unreadable_metrics_are_errors_naming_the_file(tmp_path, text, match):
    from vtbench.viz.training import read_metrics

    with pytest.raises(ValueError, match=match) as error:
        read_metrics(_metrics(tmp_path, text))
    assert str(tmp_path / "metrics.jsonl") in str(error.value)


@pytest.mark.parametrize("noise", [0.0, float("nan"), -0.1])
def test_toy_pairs_need_some_noise(noise):
    """A background clip is pure noise: without any its embedding was 0 / 0, a NaN similarity."""
    with pytest.raises(ValueError, match="noise must be a finite number > 0"):
        toy_pair("irrelevant clips", noise=noise)


def test_a_percentages_error_bar_stays_within_0_and_100():
    from vtbench.viz.results import plot_comparison

    metric = "retrieval/same_text/R@1"
    summary = {"untrained": {metric: (0.098, 0.117, 3)}, "infonce": {metric: (0.95, 0.2, 3)},
               "milnce": {"retrieval/MedR": (25.0, 40.0, 3)}}
    fig = plot_comparison(summary, [metric, "retrieval/MedR"], ["untrained", "infonce", "milnce"])

    def ends(ax):  # the error bars' ends
        return [y for segment in ax.collections[0].get_segments() for _, y in segment]

    assert min(ends(fig.axes[0])) == pytest.approx(0.0) and max(ends(fig.axes[0])) == pytest.approx(100.0)
    assert min(ends(fig.axes[1])) == pytest.approx(-15.0)  # not a percentage: the std as measured
    plt.close(fig)
