"""``evaluate`` end to end on narrated digits: a random model, and an oracle that sees the labels."""
import numpy as np
import pytest
import torch
from torch import nn

from vtbench.data.digit_words import DIGIT_WORDS
from vtbench.data.narrated_digits import NarratedDigits
from vtbench.data.text import Tokenizer
from vtbench.eval.suite import (
    PROTOCOLS,
    evaluate,
    flatten_metrics,
    span_starts,
    supported_protocols,
    window_starts,
)
from vtbench.models import build_model

SMALL = dict(n_tasks=4, videos_per_task=4, cache_dir=None)


@pytest.fixture(scope="module")
def digits():
    return NarratedDigits("test", p_skip_step=0.0, p_swap_steps=0.0, p_background_digit=0.0, **SMALL)


@pytest.fixture(scope="module")
def tokenizer(digits):
    return Tokenizer.fit(digits.all_texts())


class OneHotDigits(torch.utils.data.Dataset):
    """The same videos with each frame replaced by one-hot(digit + 1) (0 = background)."""

    def __init__(self, base):
        self.base = base

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        item = dict(self.base[i])
        item["features"] = nn.functional.one_hot(item["frame_labels"] + 1, 11).float()
        return item


class Oracle(nn.Module):
    """Clip = mean of its one-hot frames; sentence = one-hot of the digit word it names."""

    def __init__(self, tokenizer):
        super().__init__()
        table = torch.zeros(len(tokenizer), 11)
        for d, w in enumerate(DIGIT_WORDS):
            if w in tokenizer.index:
                table[tokenizer.index[w], d + 1] = 1.0
        self.register_buffer("table", table)

    def encode_video(self, video, video_mask=None):
        return video.mean(dim=2)  # (B, n, 11)

    def encode_text(self, text):
        return self.table[text].sum(dim=2)  # (B, m, 11)


def test_windows_tile_the_video_and_spans_are_centred():
    assert window_starts(10, 4).tolist() == [0, 4, 6]
    assert window_starts(8, 4).tolist() == [0, 4]
    assert window_starts(3, 4).tolist() == [0]
    assert span_starts(torch.tensor([2.0, 0.0, 8.0]), torch.tensor([10.0, 1.0, 10.0]), 10, 4).tolist() == [4, 0, 6]


def test_evaluation_clips_are_the_training_samplers_clips():
    """The same window for a caption in training and evaluation: halves round up in both (torch.round
    took 8.5 to 8 where the sampler takes 9), and a video shorter than a clip repeats its last row."""
    from vtbench.data.samplers import clip_start
    from vtbench.eval.suite import encode_clips

    spans = [(float(s), float(s + d)) for s in range(0, 30) for d in range(0, 9)]
    starts, ends = torch.tensor(spans).T
    assert span_starts(starts, ends, 40, 4).tolist() == [clip_start(s, e, 4, 40) for s, e in spans]
    assert span_starts(torch.tensor([11.0]), torch.tensor([14.0]), 40, 4).tolist() == [11]  # centre 12.5

    class Identity:
        def encode_video(self, video):  # (1, K, clip_len, D) -> its rows, flattened
            return video.flatten(2)

        def parameters(self):
            return iter([torch.zeros(1)])

    features = torch.tensor([[1.0], [2.0]])  # T = 2 < clip_len 4
    assert encode_clips(Identity(), features, torch.tensor([0]), 4).tolist() == [[1.0, 2.0, 2.0, 2.0]]


def test_narrated_digits_supports_every_protocol(digits):
    assert supported_protocols(digits[0]) == list(PROTOCOLS)


def test_oracle_scores_perfectly_where_the_answer_is_known(digits, tokenizer):
    out = evaluate(Oracle(tokenizer), OneHotDigits(digits), tokenizer, clip_len=4, few_shot_episodes=20)
    assert out["zero_shot"]["accuracy"] == 1.0
    assert out["step_localisation"]["recall"] == 1.0  # no skipped or swapped steps
    assert out["few_shot"]["dtw"]["accuracy"] == 1.0
    # a caption ties with every clip of its digit (ties count against it), so R@1 < 1, but every
    # clip ranked above the truth is of the same digit
    labels = [digits[i]["step_labels"][int(s)] for i in range(len(digits)) for s in digits[i]["segments"][:, 0]]
    same_digit = max(labels.count(d) for d in set(labels))
    assert out["retrieval"]["MeanR"] <= same_digit
    assert out["video_paragraph"]["background_removed"]["dtw"]["R@10"] == 1.0  # 4 videos per task


def test_random_model_runs_every_protocol_and_restores_training_mode(digits, tokenizer):
    torch.manual_seed(0)
    model = build_model("frames", input_dim=64, vocab_size=len(tokenizer))
    model.train()
    out = evaluate(model, digits, tokenizer, clip_len=4, few_shot_episodes=10)
    assert model.training
    flat = flatten_metrics(out)
    for key in ("retrieval/R@1", "retrieval/MedR", "video_paragraph/background_kept/otam/R@5",
                "video_paragraph/background_removed/caption_average/R@10", "step_localisation/recall",
                "few_shot/dtw/accuracy", "few_shot/otam/accuracy", "zero_shot/accuracy"):
        assert key in flat and 0 <= flat[key] <= 1e4, key
    assert out["meta"]["n_videos"] == len(digits)
    assert out["few_shot"]["dtw"]["n_way"] == 4  # clamped to the number of tasks


def test_selected_protocols_and_bad_input(digits, tokenizer):
    model = Oracle(tokenizer)
    out = evaluate(model, OneHotDigits(digits), tokenizer, clip_len=4, protocols=["zero_shot"], max_videos=3)
    assert set(out) == {"zero_shot", "meta"} and out["meta"]["n_videos"] == 3
    out = evaluate(model, OneHotDigits(digits), tokenizer, clip_len=4, protocols=["few_shot"], max_videos=4)
    assert "0 have that many" in out["few_shot"]["skipped"]  # 4 videos of 4 tasks: no episode
    with pytest.raises(ValueError, match="valid: retrieval"):
        evaluate(model, OneHotDigits(digits), tokenizer, clip_len=4, protocols=["recall"])
    with pytest.raises(ValueError, match="max_videos must be an int >= 1"):
        evaluate(model, OneHotDigits(digits), tokenizer, clip_len=4, max_videos=-1)
    with pytest.raises(ValueError, match="empty dataset"):
        evaluate(model, [], tokenizer, clip_len=4)
    captions_only = [{"video_id": "v", "features": torch.zeros(5, 11), "starts": torch.tensor([0.0]),
                      "ends": torch.tensor([2.0]), "texts": ["write a one"]}]
    with pytest.raises(ValueError, match="does not support"):
        evaluate(model, captions_only, tokenizer, clip_len=4, protocols=["step_localisation"])


def _crosstask_folder(root, rng):
    """Two tasks of single-word steps; features one-hot(step + 1) inside the annotated segments."""
    (root / "annotations").mkdir(parents=True)
    (root / "features").mkdir()
    (root / "tasks_primary.txt").write_text("101\nBake\nhttps://x\n3\nflour,whisk,bake\n\n"
                                            "202\nTea\nhttps://y\n2\nboil,pour\n")
    listing = []
    for v in range(6):
        task, steps = ("101", 3) if v % 2 == 0 else ("202", 2)
        listing.append(f"{task},v{v},https://u/v{v}")
        t_len, feats, lines, t = 40, np.zeros((40, 6), np.float32), [], int(rng.integers(1, 4))
        feats[:, 0] = 1.0
        for step in range(steps):
            length = int(rng.integers(5, 9))
            feats[t:t + length] = np.eye(6, dtype=np.float32)[step + 1 + 3 * (task == "202")]
            lines.append(f"{step + 1},{t},{t + length}")
            t += length + int(rng.integers(1, 4))
        (root / "annotations" / f"{task}_v{v}.csv").write_text("\n".join(lines) + "\n")
        np.save(root / "features" / f"v{v}.npy", feats[:t_len])
    (root / "videos.csv").write_text("\n".join(listing) + "\n")
    return root


class StepOracle(nn.Module):
    """Clip = mean of its one-hot rows; a step word = its one-hot."""

    def __init__(self, tokenizer):
        super().__init__()
        table = torch.zeros(len(tokenizer), 6)
        for k, w in enumerate(["flour", "whisk", "bake", "boil", "pour"]):
            table[tokenizer.index[w], k + 1] = 1.0
        self.register_buffer("table", table)

    def encode_video(self, video, video_mask=None):
        return video.mean(dim=2)

    def encode_text(self, text):
        return self.table[text].sum(dim=2)


def test_crosstask_format_gets_retrieval_paragraphs_and_step_localisation(tmp_path):
    from vtbench.data import CrossTask

    ds = CrossTask(_crosstask_folder(tmp_path / "crosstask", np.random.default_rng(0)))
    assert supported_protocols(ds[0]) == ["retrieval", "video_paragraph", "step_localisation"]
    tok = Tokenizer.fit(["flour whisk bake boil pour"])
    out = evaluate(StepOracle(tok), ds, tok, clip_len=2)
    assert set(out) == {"retrieval", "video_paragraph", "step_localisation", "meta"}
    assert out["step_localisation"]["recall"] == 1.0
    assert out["step_localisation"]["per_task"] == {"0": 1.0, "1": 1.0}
    assert out["retrieval"]["same_text"]["R@1"] == 1.0
