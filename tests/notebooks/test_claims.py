"""Numbers that the notebooks' text states, recomputed at their default parameters (the text
says "on this pair", "117 of 480", ...: if the code changes them, these fail and the text is due)."""
import pytest
import torch

from vtbench.viz import align, toy_pairs
from vtbench.viz.alignments import path_accuracy

DEFAULTS = dict(clips_per_step=3, noise=0.6, seed=0)  # notebook 01's parameters cell


@pytest.fixture(scope="module")
def pairs():
    return toy_pairs(**DEFAULTS)


def skipped_clips(alignment):
    return [i for i in range(alignment.path.shape[0]) if not bool(alignment.path[i].any())]


def test_notebook_01_s2dtw_skips_only_below_tau_minus_0_13(pairs):
    background = pairs["irrelevant clips"]
    for tau in (0.5, 0.0, -0.12):
        assert skipped_clips(align(background, "s2dtw", skip_cost=tau)) == []
    assert skipped_clips(align(background, "s2dtw", skip_cost=-0.13)) == [0, 1, 2]  # the start clips first
    first_step, last_step = 3, 20  # the truth's first and last clip; 9..11 is the block between steps 2 and 3
    assert background.truth[first_step].any() and background.truth[last_step].any()
    assert not background.truth[first_step - 1].any() and not background.truth[9:12].any()
    for tau in (-0.15, -0.2, -0.3):
        assert skipped_clips(align(background, "s2dtw", skip_cost=tau)) == [0, 1, 2, 22, 23]  # 21 and 9..11 stay


def test_notebook_01_smoothing_at_1_gives_sentence_1_only_the_first_clip(pairs):
    path = align(pairs["irrelevant clips"], "s2dtw", smooth_gamma=1.0).path
    assert torch.nonzero(path[:, 0] > 0.5).flatten().tolist() == [0]


def test_notebook_01_otam_and_s2dtw_on_the_clean_pair(pairs):
    clean = pairs["aligned"]
    dtw, s2dtw, otam = (align(clean, k) for k in ("dtw", "s2dtw", "otam"))
    assert path_accuracy(dtw.path, clean.truth) == 1.0 > path_accuracy(otam.path, clean.truth)
    assert int((s2dtw.path > 0.5).sum()) > int((dtw.path > 0.5).sum())  # more cells than DTW: negative costs
    forward = align(clean, "otam").path  # the union of both directions: horizontal runs of dots
    assert any(int((forward[i] > 0.5).sum()) > 1 for i in range(forward.shape[0]))


@pytest.mark.slow
def test_notebooks_03_06_retrieval_ceiling_and_tempclr_videos():
    from vtbench.eval.suite import _captions
    from vtbench.experiments import eval_dataset
    from vtbench.train import make_config
    from vtbench.train.batches import load_training_data

    test = eval_dataset(make_config("vt-twins", "quick"), "test")
    captions = [c for i in range(len(test)) for c in _captions(test[i])[2]]
    assert (len(captions), len(set(captions))) == (489, 10)  # R@1 <= 10 / 489
    data = load_training_data(make_config("tempclr", "quick"))
    assert (len(data.eligible), len(data.dataset)) == (117, 480)
