"""The CrossTask ordered-step decoder and recall on hand-made score matrices."""
import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vtbench.eval.step_localisation import (
    crosstask_recall,
    decode_ordered_steps,
    prediction_matrix,
    step_localisation_recall,
    truth_matrix,
)


def test_decoder_visits_steps_in_order_even_against_the_per_step_argmax():
    # each column's argmax alone would put step 0 after step 1
    scores = torch.tensor([[0.0, 5.0], [0.0, 0.0], [1.0, 0.0], [0.0, 4.0]])
    assert decode_ordered_steps(scores).tolist() == [2, 3]


def test_decoder_places_each_step_once():
    scores = torch.tensor([[9.0, 8.0, 7.0]] * 3)
    times = decode_ordered_steps(scores)
    assert times.tolist() == [0, 1, 2]
    y = prediction_matrix(times, 3)
    assert y.sum(0).tolist() == [1, 1, 1]


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 7), st.data())
def test_decoder_is_optimal_against_brute_force(t_len, data):
    k_len = data.draw(st.integers(1, t_len))
    vals = data.draw(st.lists(st.integers(-3, 3), min_size=t_len * k_len, max_size=t_len * k_len))
    scores = torch.tensor(vals, dtype=torch.float64).reshape(t_len, k_len)
    times = decode_ordered_steps(scores)
    assert all(a < b for a, b in zip(times[:-1], times[1:]))
    best = max(sum(scores[c[k], k] for k in range(k_len)) for c in itertools.combinations(range(t_len), k_len))
    assert float(sum(scores[times[k], k] for k in range(k_len))) == pytest.approx(float(best))


def test_decoder_rejects_too_short_videos():
    with pytest.raises(ValueError, match="3 ordered steps"):
        decode_ordered_steps(torch.zeros(2, 3))


def test_the_protocol_names_the_video_whose_input_is_wrong():
    good = ("task", torch.zeros(4, 2), torch.tensor([[0, 0.0, 1.0]]))
    with pytest.raises(ValueError, match=r"video 1 \(task 'b'\): scores must be a \(T, K\) tensor, got \(5,\)"):
        step_localisation_recall([good, ("b", torch.zeros(5), torch.zeros(0, 3))])
    with pytest.raises(ValueError, match=r"video 1 \(task 'c'\): scores must be finite"):
        step_localisation_recall([good, ("c", torch.full((4, 2), torch.nan), torch.zeros(0, 3))])
    with pytest.raises(ValueError, match=r"video 0 \(task 'd'\): segment step 5 outside the task's 2 steps"):
        step_localisation_recall([("d", torch.zeros(4, 2), torch.tensor([[5, 0.0, 1.0]]))])


def test_truth_matrix_marks_overlapping_seconds():
    y = truth_matrix(torch.tensor([[0, 1.0, 3.0], [1, 3.5, 4.2]]), 6, 3)
    assert y[:, 0].nonzero().flatten().tolist() == [1, 2]
    assert y[:, 1].nonzero().flatten().tolist() == [3, 4]
    assert not y[:, 2].any()


def test_known_step_recall_from_a_hand_made_score_matrix():
    # Task "a", video 1: steps 0, 1, 2 with ground truth at seconds 1, 4 and (none for step 2).
    # The scores put step 0 at second 1 (hit), step 1 at second 2 (miss), step 2 at second 5.
    s1 = torch.full((6, 3), -1.0)
    s1[1, 0], s1[2, 1], s1[5, 2] = 1.0, 1.0, 1.0
    seg1 = torch.tensor([[0, 1.0, 2.0], [1, 4.0, 5.0]])
    # Task "a", video 2: two steps, both hit -> task a: 3 hits of 4 ground-truth steps.
    s2 = torch.full((5, 3), -1.0)
    s2[0, 0], s2[3, 1], s2[4, 2] = 1.0, 1.0, 1.0
    seg2 = torch.tensor([[0, 0.0, 1.0], [1, 3.0, 4.0]])
    # Task "b": one video, one step with truth, missed -> 0/1.
    s3 = torch.tensor([[1.0], [0.0], [0.0]])
    seg3 = torch.tensor([[0, 2.0, 3.0]])
    out = step_localisation_recall([("a", s1, seg1), ("a", s2, seg2), ("b", s3, seg3)])
    assert out["per_task"] == {"a": 0.75, "b": 0.0}
    assert out["recall"] == pytest.approx(0.375)  # mean over tasks, not over steps (3/5)
    assert out["n_videos"] == 3 and out["skipped_short"] == 0


def test_recall_counts_only_steps_with_truth_and_skips_short_videos():
    y_true = torch.zeros(4, 2, dtype=torch.bool)
    y_true[0, 0] = True
    y_pred = prediction_matrix(torch.tensor([0, 3]), 4)
    assert crosstask_recall([(0, y_true, y_pred)])["recall"] == 1.0
    out = step_localisation_recall([(0, torch.zeros(4, 2), torch.tensor([[0, 0.0, 1.0]])),
                                    (0, torch.zeros(1, 2), torch.tensor([[0, 0.0, 1.0]]))])
    assert out["skipped_short"] == 1 and out["n_videos"] == 1
