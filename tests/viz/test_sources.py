"""Pairs from models and test videos; the explorer's model list (runs, a quick run, untrained)."""
import warnings

import pytest
import torch

from vtbench.data import build_dataset
from vtbench.notebooks import explorer_models, find_runs
from vtbench.viz.explorer import AlignmentExplorer
from vtbench.viz.sources import DatasetSource, clip_truth, cut_clips, untrained_embedder, video_pair

warnings.filterwarnings("ignore", message="vtbench: the")


@pytest.fixture(scope="module")
def splits():
    return build_dataset("narrated-digits", "train", seed=0), build_dataset("narrated-digits", "test", seed=0)


def test_cut_clips_and_truth():
    clips, times = cut_clips(torch.arange(22.0)[:, None].expand(22, 3), 4)
    assert clips.shape == (5, 4, 3) and times[-1].tolist() == [16.0, 20.0]
    segments = torch.tensor([[0, 4.0, 12.0], [1, 12.0, 20.0]])
    truth = clip_truth(times, segments, torch.tensor([1, -1, 0]))
    assert truth.T.tolist() == [[False, False, False, True, True], [False] * 5, [False, True, True, False, False]]
    with pytest.raises(ValueError, match="shorter than one clip"):
        cut_clips(torch.zeros(3, 2), 4)


def test_video_pair_from_an_untrained_model(splits):
    train, test = splits
    embedder = untrained_embedder(train, seed=0)
    item = test[0]
    pair = video_pair(item, embedder, "narration")
    n = item["features"].shape[0] // embedder.clip_len
    assert pair.similarity.shape == (n, len(item["texts"]))
    assert float(pair.similarity.abs().max()) <= 1 + 1e-9
    fillers = torch.as_tensor(item["narration_segment"]) < 0
    assert not pair.truth[:, fillers].any()
    steps = video_pair(item, embedder, "steps")
    assert steps.similarity.shape[1] == len(item["segments"]) and bool(steps.truth.any(0).all())
    # the same seed gives the same initialisation
    again = video_pair(item, untrained_embedder(train, seed=0), "narration")
    assert torch.equal(pair.similarity, again.similarity)


@pytest.mark.slow
def test_explorer_models_trains_when_asked_and_finds_runs(splits, tmp_path):
    train, test = splits
    assert list(explorer_models(train, runs_dir=tmp_path)) == ["untrained"]
    models = explorer_models(train, runs_dir=tmp_path, train_if_missing=True,
                             train_overrides={"steps": 3, "max_words": 5, "embed_dim": 24})
    assert list(models) == ["explorer-vt-twins", "untrained"]
    trained, untrained = models["explorer-vt-twins"], models["untrained"]
    assert trained.max_len == untrained.max_len == 5  # the run's text length, as it was trained
    shapes = [[p.shape for p in m.model.parameters()] for m in (trained, untrained)]
    assert shapes[0] == shapes[1]  # the untrained model is what the run started from
    assert find_runs(tmp_path) == [tmp_path / "explorer-vt-twins"]
    explorer = AlignmentExplorer(DatasetSource(test, models, max_videos=2))
    before = [list(r) for r in explorer.figure.data[0].z]
    explorer.model.value = "untrained"
    assert [list(r) for r in explorer.figure.data[0].z] != before
