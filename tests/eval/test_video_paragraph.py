"""Video-paragraph retrieval on constructed embeddings."""
import pytest
import torch

from vtbench.align import dtw, otam
from vtbench.eval.video_paragraph import paragraph_scores, sequence_distances, video_paragraph_metrics

E = torch.eye(8)


def test_order_decides_between_videos_with_the_same_clips():
    # videos 0 and 1 hold the same clips in opposite orders: only DTW and OTAM can tell them apart
    videos = [E[[0, 1, 2]], E[[2, 1, 0]], E[[3, 4]], E[[5, 6, 7, 5]]]
    paragraphs = [E[[0, 1, 2]], E[[2, 1, 0]], E[[3, 4]], E[[5, 6, 7]]]
    out = video_paragraph_metrics(paragraphs, videos)
    assert out["dtw"]["R@1"] == 1.0 and out["otam"]["R@1"] == 1.0
    assert out["caption_average"]["R@1"] == 0.5  # ties count against queries 0 and 1
    assert out["caption_average"]["R@5"] == 1.0


def test_background_clips_do_not_break_dtw_and_otam():
    # "background kept": the videos gain background clips (E[7]) around the steps
    videos = [E[[7, 0, 7, 1, 2, 7]], E[[2, 7, 1, 0]], E[[3, 3, 4, 7]]]
    paragraphs = [E[[0, 1, 2]], E[[2, 1, 0]], E[[3, 4]]]
    out = video_paragraph_metrics(paragraphs, videos, ["dtw", "otam"])
    assert out["dtw"]["R@1"] == 1.0 and out["otam"]["R@1"] == 1.0


def test_dtw_distance_is_normalised_dtw():
    a, b = [E[[0, 1]], E[[0, 1, 2]]], [E[[0]], E[[1, 2, 3]]]
    d = sequence_distances(a, b, "dtw")
    cost = 1 - a[1] @ b[1].T
    assert d[1, 1] == pytest.approx(float(dtw(cost.double())) * 3**2 / (3 * 3))
    cost = 1 - a[0] @ b[0].T
    assert d[0, 0] == pytest.approx(float(dtw(cost.double())) * 3**2 / (2 * 1))


def test_otam_distance_is_normalised_otam_both_ways():
    a, b = [E[[0, 1]], E[[0, 1, 2]]], [E[[2]], E[[1, 2, 0, 3]]]
    d = sequence_distances(a, b, "otam")
    cost = (1 - a[1] @ b[1].T).double()
    assert d[1, 1] == pytest.approx(float(otam(cost, 0.0) + otam(cost.T, 0.0)) * 4**2 / (3 * 4))


def test_otam_is_symmetric_and_scores_are_negated_distances():
    a, b = [E[[0, 1]], E[[2, 3, 1]]], [E[[1, 0, 2]], E[[3]]]
    d_ab = sequence_distances(a, b, "otam")
    assert torch.allclose(d_ab, sequence_distances(b, a, "otam").T)
    assert torch.equal(paragraph_scores(a, b, "otam"), -d_ab)


def test_bad_input():
    with pytest.raises(ValueError, match="unknown score"):
        sequence_distances([E[:2]], [E[:2]], "soft")
    with pytest.raises(ValueError, match="paragraph i belongs to video i"):
        video_paragraph_metrics([E[:2]], [E[:2], E[:3]])
    with pytest.raises(ValueError, match=r"queries\[0\] must be a non-empty \(L, d\) tensor, got \(0, 8\)"):
        sequence_distances([E[:0]], [E[:2]])
    with pytest.raises(ValueError, match=r"videos\[1\] must be a non-empty"):  # the caller's names
        video_paragraph_metrics([E[:2], E[:2]], [E[:2], E[:0]])
    with pytest.raises(ValueError, match="paragraphs have d = 8 but videos have d = 3"):
        video_paragraph_metrics([E[:2], E[:2]], [E[:2, :3], E[:2, :3]])
    with pytest.raises(ValueError, match=r"candidates\[1\] has d = 3 but candidates\[0\] has 8"):
        sequence_distances([E[:2]], [E[:2], E[:2, :3]])
    with pytest.raises(ValueError, match="candidates is empty"):
        sequence_distances([E[:2]], [])
