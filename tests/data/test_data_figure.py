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
