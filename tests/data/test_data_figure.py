"""The one-video figure draws narrated digits and real-format items, and the script saves a PNG."""
import torch

from vtbench.data import NarratedDigits
from vtbench.viz.data_figures import main, pick_example, plot_video


def test_plot_video_on_both_kinds_of_item(tmp_path):
    ds = NarratedDigits("val", videos_per_task=2, cache_dir=None)
    item = pick_example(ds)
    assert len(item["segments"]) >= 4 and (item["narration_segment"] == -1).any()
    fig = plot_video(item)
    assert len(fig.axes) == 3
    real = {"video_id": "yt1", "features": torch.rand(50, 16), "starts": torch.tensor([1.0, 20.0]),
            "ends": torch.tensor([6.0, 31.0]), "texts": ["hello", "pour milk"]}
    plot_video(real).savefig(tmp_path / "real.png")


def test_script_writes_the_png(tmp_path, monkeypatch):
    monkeypatch.setenv("VTBENCH_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "fig.png"
    assert main(["--split", "val", "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000


def test_a_label_longer_than_its_box_does_not_run_into_the_next_one():
    """A short sentence's label runs past its box: the next sentence goes to another lane, so no
    two labels (measured as drawn) overlap."""
    texts = ["hi everyone and welcome back to the channel", "pour the milk", "stir", "hi again"]
    item = {"video_id": "yt1", "features": torch.rand(60, 16), "texts": texts,
            "starts": torch.tensor([2.0, 5.0, 40.0, 48.0]), "ends": torch.tensor([4.0, 12.0, 44.0, 50.0])}
    fig = plot_video(item, width=8.0)
    ax_text = fig.axes[2]
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax_text.texts]
    assert len(boxes) == len(texts)
    for a in range(len(boxes)):
        for b in range(a + 1, len(boxes)):
            assert not boxes[a].overlaps(boxes[b]), (texts[a], texts[b])
    # far apart sentences still share a lane: two lanes for four sentences
    assert len({round(box.y0) for box in boxes}) == 2
