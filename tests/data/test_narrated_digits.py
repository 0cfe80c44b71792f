"""Narrated digits: determinism, disjoint handwriting, and the noise knobs measured on the data."""
import time

import numpy as np
import pytest
import torch

from vtbench.data import DATASETS, NarratedDigits, Tokenizer, build_dataset, digit_prompts
from vtbench.data.digit_words import DIGIT_WORDS, FILLERS
from vtbench.data.narrated_digits import _uci_digits, image_pools, make_tasks

ITEM_KEYS = {"video_id", "features", "starts", "ends", "texts", "task", "steps", "segments",
             "frame_labels", "step_labels", "clean_texts", "narration_segment"}


def items(ds):
    return [ds[i] for i in range(len(ds))]


@pytest.fixture(scope="module")
def train():
    return items(NarratedDigits("train", cache_dir=None))


def narrated_pairs(its):
    """(sentence start - segment start, sentence end - segment end, T, item, k) per step sentence."""
    out = []
    for it in its:
        for k, seg in enumerate(it["narration_segment"].tolist()):
            if seg >= 0:
                _, s, e = it["segments"][seg].tolist()
                out.append((it["starts"][k].item() - s, it["ends"][k].item() - e, len(it["features"]), it, k))
    return out


def test_generation_time_of_the_defaults_is_printed(capsys):
    _uci_digits.cache_clear()  # measure from scratch: reading sklearn's digits included
    t0 = time.perf_counter()
    sizes = {split: len(NarratedDigits(split, cache_dir=None)) for split in ("train", "val", "test")}
    seconds = time.perf_counter() - t0
    with capsys.disabled():
        print(f"\n[narrated-digits] default train/val/test {sizes} generated in {seconds:.2f} s (no cache)")
    assert sizes == {"train": 480, "val": 120, "test": 120}


def test_item_contract(train):
    it = train[0]
    assert ITEM_KEYS <= set(it)
    ds = NarratedDigits("val", videos_per_task=1, cache_dir=None)
    assert ds[-1]["video_id"] == ds[len(ds) - 1]["video_id"] and len(list(ds)) == len(ds)
    with pytest.raises(IndexError):
        ds[len(ds)]
    T, K, S = len(it["features"]), len(it["texts"]), len(it["segments"])
    assert it["features"].shape == (T, 64) and it["features"].dtype == torch.float32
    assert it["starts"].shape == it["ends"].shape == (K,) == it["narration_segment"].shape
    assert it["segments"].shape == (S, 3) and it["frame_labels"].shape == (T,)
    assert it["frame_labels"].dtype == torch.long and len(it["clean_texts"]) == S
    assert it["steps"] == [f"write {'an' if d == 8 else 'a'} {DIGIT_WORDS[d]}" for d in it["step_labels"]]
    for it in train:
        assert len(it["texts"]) >= 1
        assert (it["starts"] >= 0).all() and (it["ends"] <= len(it["features"])).all()
        assert (it["starts"] < it["ends"]).all() and (it["starts"][1:] >= it["starts"][:-1]).all()
        assert 0.0 <= it["features"].min() and it["features"].max() <= 1.0


def test_frame_labels_match_segments(train):
    for it in train[:100]:
        expected = torch.full_like(it["frame_labels"], -1)
        for row, (step, s, e) in enumerate(it["segments"].long().tolist()):
            expected[s:e] = it["step_labels"][step]
            assert it["clean_texts"][row] == it["steps"][step]
        assert torch.equal(it["frame_labels"], expected)


def test_deterministic_from_seed():
    a = items(NarratedDigits("val", seed=3, videos_per_task=2, cache_dir=None))
    b = items(NarratedDigits("val", seed=3, videos_per_task=2, cache_dir=None))
    c = items(NarratedDigits("val", seed=4, videos_per_task=2, cache_dir=None))
    for x, y in zip(a, b):
        assert torch.equal(x["features"], y["features"]) and x["texts"] == y["texts"]
        assert torch.equal(x["starts"], y["starts"]) and torch.equal(x["segments"], y["segments"])
    assert [x["texts"] for x in a] != [z["texts"] for z in c]
    assert not torch.equal(torch.cat([x["features"] for x in a])[:100], torch.cat([z["features"] for z in c])[:100])


def test_tasks_shared_by_splits_and_steps_shared_by_tasks():
    tr = NarratedDigits("train", videos_per_task=1, cache_dir=None)
    te = NarratedDigits("test", videos_per_task=1, cache_dir=None)
    assert tr.tasks == te.tasks and len(tr.tasks) == 12
    assert len({tuple(t) for t in tr.tasks}) == 12
    assert all(3 <= len(t) <= 6 and len(set(t)) == len(t) for t in tr.tasks)
    counts = np.bincount([d for t in tr.tasks for d in t], minlength=10)
    assert (counts >= 1).all() and (counts >= 2).any()  # every digit used, some by several tasks
    assert NarratedDigits("train", seed=1, videos_per_task=1, cache_dir=None).tasks != tr.tasks


def test_image_pools_are_disjoint_and_stratified():
    pools = image_pools()
    _, labels = _uci_digits()
    sets = {k: set(v.tolist()) for k, v in pools.items()}
    assert not (sets["train"] & sets["val"]) and not (sets["train"] & sets["test"]) and not (sets["val"] & sets["test"])
    assert sum(map(len, sets.values())) == len(labels) == 1797
    for split, frac in (("train", 0.6), ("val", 0.2), ("test", 0.2)):
        per_class = np.bincount(labels[pools[split]], minlength=10) / np.bincount(labels)
        assert np.allclose(per_class, frac, atol=0.01)


def test_videos_show_only_their_split_handwriting():
    images, _ = _uci_digits()
    pools = image_pools()
    index = {}  # un-augmented frame bytes -> the images that look like it
    for i, image in enumerate(images.reshape(len(images), 64)):
        index.setdefault(image.tobytes(), set()).add(i)
    for split in ("train", "test"):
        ds = NarratedDigits(split, videos_per_task=2, max_shift_px=0, pixel_noise=0.0, p_background_digit=0.0,
                            cache_dir=None)
        frames = torch.cat([ds[i]["features"][ds[i]["frame_labels"] >= 0] for i in range(len(ds))]).numpy()
        sources = [index[f.tobytes()] for f in frames]  # KeyError: a frame that is no UCI image
        assert all(s & set(pools[split].tolist()) for s in sources)


def test_mean_narration_shift_follows_shift_mean():
    its = items(NarratedDigits("train", shift_mean=2.5, shift_std=1.0, videos_per_task=20, cache_dir=None))
    start_shift = np.array([p[0] for p in narrated_pairs(its)])
    assert abs(start_shift.mean() - 2.5) < 0.1 and abs(start_shift.std() - 1.0) < 0.1
    its = items(NarratedDigits("train", shift_mean=-3.0, shift_std=0.0, videos_per_task=20, cache_dir=None))
    unclipped = [p[0] for p in narrated_pairs(its) if p[3]["starts"][p[4]] > 0]
    assert np.allclose(unclipped, -3.0)


def test_default_noise_levels_measured(train):
    pairs = narrated_pairs(train)
    unclipped = np.array([shift for shift, _, T, it, k in pairs if 0 < it["starts"][k] and it["ends"][k] < T])
    assert abs(unclipped.mean() - (-1.0)) < 0.3 and abs(unclipped.std() - 3.0) < 0.4
    n_sentences = sum(len(it["texts"]) for it in train)
    fillers = sum(int((it["narration_segment"] == -1).sum()) for it in train)
    assert abs(fillers / n_sentences - 0.4) < 0.03
    n_segments = sum(len(it["segments"]) for it in train)
    unnarrated = sum(len(it["segments"]) - len(set(it["narration_segment"].tolist()) - {-1}) for it in train)
    assert abs(unnarrated / n_segments - 0.3) < 0.03
    n_steps = sum(len(it["steps"]) for it in train)
    assert abs(1 - n_segments / n_steps - 0.1) < 0.03  # p_skip_step


@pytest.mark.parametrize("rate", [0.0, 0.2, 0.6])
def test_filler_and_unnarrated_rates(rate):
    its = items(NarratedDigits("train", filler_rate=rate, p_unnarrated=rate / 2, videos_per_task=25, cache_dir=None))
    n_sentences = sum(len(it["texts"]) for it in its)
    fillers = [t for it in its for t, s in zip(it["texts"], it["narration_segment"].tolist()) if s == -1]
    assert abs(len(fillers) / n_sentences - rate) < 0.04
    assert set(fillers) <= set(FILLERS)
    n_segments = sum(len(it["segments"]) for it in its)
    narrated = sum(len(set(it["narration_segment"].tolist()) - {-1}) for it in its)
    assert abs(1 - narrated / n_segments - rate / 2) < 0.04


def test_swap_rate():
    its = items(NarratedDigits("train", p_skip_step=0.0, p_swap_steps=0.5, videos_per_task=25, cache_dir=None))
    swapped = [bool((it["segments"][1:, 0] < it["segments"][:-1, 0]).any()) for it in its]
    assert abs(np.mean(swapped) - 0.5) < 0.07
    for it in its:  # a swap exchanges one neighbouring pair: the set of steps is unchanged
        assert sorted(it["segments"][:, 0].long().tolist()) == list(range(len(it["steps"])))


def test_clean_preset_is_perfectly_aligned():
    its = items(NarratedDigits("val", preset="clean", cache_dir=None))
    for it in its:
        assert sorted(it["narration_segment"].tolist()) == list(range(len(it["segments"])))
        for k, seg in enumerate(it["narration_segment"].tolist()):
            _, s, e = it["segments"][seg].tolist()
            assert (it["starts"][k].item(), it["ends"][k].item()) == (s, e)
            digit = it["step_labels"][int(it["segments"][seg, 0])]
            words = it["texts"][k].split()
            assert DIGIT_WORDS[digit] in words and not set(DIGIT_WORDS) - {DIGIT_WORDS[digit]} & set(words)


def test_preset_conflicts_and_bad_knobs_are_rejected():
    with pytest.raises(ValueError, match="preset"):
        NarratedDigits("val", preset="clean", shift_std=2.0, cache_dir=None)
    with pytest.raises(ValueError, match="preset"):
        NarratedDigits("val", preset="noisy", cache_dir=None)
    with pytest.raises(ValueError, match="split"):
        NarratedDigits("dev", cache_dir=None)
    with pytest.raises(ValueError, match="p_unnarrated"):
        NarratedDigits("val", p_unnarrated=1.5, cache_dir=None)
    with pytest.raises(ValueError, match="filler_rate"):
        NarratedDigits("val", filler_rate=1.0, cache_dir=None)


NAN, INF = float("nan"), float("inf")
BAD_KNOBS = [  # (keyword arguments, error, what the message must say)
    # raw values are checked before noise scales (and caps) them
    (dict(p_unnarrated=1.5, noise=2.0), ValueError, r"p_unnarrated must lie in \[0, 1\], got 1.5"),
    (dict(filler_rate=1.0, noise=2.0), ValueError, r"filler_rate must lie in \[0, 1\), got 1.0"),
    (dict(p_unnarrated=-0.5, noise=0.0), ValueError, r"p_unnarrated must lie in \[0, 1\], got -0.5"),
    (dict(shift_std=-3.0, noise=0.0), ValueError, r"shift_std must be >= 0, got -3.0"),
    # every real knob must be finite
    (dict(shift_mean=NAN), ValueError, r"shift_mean must be a finite number, got nan"),
    (dict(shift_mean=-INF), ValueError, r"shift_mean must be a finite number, got -inf"),
    (dict(shift_std=NAN), ValueError, r"shift_std must be a finite number"),
    (dict(pixel_noise=NAN), ValueError, r"pixel_noise must be a finite number"),
    (dict(background_noise=INF), ValueError, r"background_noise must be a finite number"),
    (dict(p_skip_step=NAN), ValueError, r"p_skip_step must be a finite number"),
    (dict(pool_fractions=(NAN, 0.5, 0.5)), ValueError, r"pool_fractions\[0\] must be a finite number"),
    (dict(shift_mean="1"), TypeError, r"shift_mean must be a real number"),
    (dict(p_swap_steps=True), TypeError, r"p_swap_steps must be a real number"),
    # integers: named, with the value
    (dict(seed=-1), ValueError, r"seed must be a non-negative integer, got -1"),
    (dict(pool_seed=-1), ValueError, r"pool_seed must be a non-negative integer, got -1"),
    (dict(seed=1.0), TypeError, r"seed must be an integer, got 1.0"),
    (dict(n_tasks=2.5), TypeError, r"n_tasks must be an integer, got 2.5"),
    (dict(n_tasks=0), ValueError, r"n_tasks must be a positive integer, got 0"),
    (dict(videos_per_task=0), ValueError, r"videos_per_task must be a positive integer, got 0"),
    (dict(frames_per_clip=1.5), TypeError, r"frames_per_clip must be an integer, got 1.5"),
    (dict(frames_per_clip=0), ValueError, r"frames_per_clip must be a positive integer, got 0"),
    (dict(max_shift_px=1.5), TypeError, r"max_shift_px must be an integer, got 1.5"),
    (dict(max_shift_px=4), ValueError, r"max_shift_px must lie in 0..3, got 4"),
    # (low, high) pairs
    (dict(clips_per_step=(2,)), ValueError, r"clips_per_step must be a \(low, high\) pair of integers"),
    (dict(steps_per_task=3), TypeError, r"steps_per_task must be a \(low, high\) pair of integers"),
    (dict(steps_per_task=(3.5, 6)), TypeError, r"steps_per_task must be a \(low, high\) pair of integers"),
    (dict(steps_per_task=(0, 3)), ValueError, r"steps_per_task must be \(low, high\) with 1 <= low <= high"),
    (dict(steps_per_task=(3, 11)), ValueError, r"steps_per_task must satisfy 1 <= lo <= hi <= 10"),
    (dict(filler_len=(4, 2)), ValueError, r"filler_len must be \(low, high\) with 1 <= low <= high, got \(4, 2\)"),
    (dict(background_len=(-1, 2)), ValueError, r"background_len must be \(low, high\) with 0 <= low <= high"),
    # more tasks than scripts; handwriting pools that miss a digit
    (dict(n_tasks=11, steps_per_task=(1, 1)), ValueError, r"n_tasks=11 .*steps_per_task=\(1, 1\) allows only 10"),
    (dict(pool_fractions=(0.998, 0.001, 0.001)), ValueError, r"pool_fractions=.* leave the val pool no image of digit"),
    (dict(pool_fractions=(0.5, 0.5)), ValueError, r"pool_fractions must be three positive numbers"),
]


@pytest.mark.timeout(60)  # too many tasks used to loop forever
@pytest.mark.parametrize("kwargs, error, message", BAD_KNOBS,
                         ids=[",".join(f"{k}={v!r}" for k, v in kw.items()) for kw, _, _ in BAD_KNOBS])
def test_bad_knobs_get_an_error_naming_them(kwargs, error, message):
    with pytest.raises(error, match=message):
        NarratedDigits("val", cache_dir=None, **{"videos_per_task": 1, **kwargs})


@pytest.mark.timeout(60)
def test_make_tasks_draws_every_script_or_refuses():
    assert sorted(make_tasks(10, (1, 1), seed=0)) == [[d] for d in range(10)]
    assert len({tuple(t) for t in make_tasks(100, (1, 2), seed=0)}) == 100  # 10 + 10 * 9 scripts
    with pytest.raises(ValueError, match=r"n_tasks=101 .*allows only 100 scripts"):
        make_tasks(101, (1, 2), seed=0)


def test_numpy_scalars_act_like_python_numbers():
    a = NarratedDigits("val", seed=np.int64(1), n_tasks=np.int32(4), shift_std=np.float32(2.0),
                       videos_per_task=1, cache_dir=None)
    b = NarratedDigits("val", seed=1, n_tasks=4, shift_std=2.0, videos_per_task=1, cache_dir=None)
    assert a.config == b.config and a.config.key("val") == b.config.key("val") and type(a.config.seed) is int
    assert torch.equal(a[0]["features"], b[0]["features"])


def test_noise_still_caps_valid_rates():
    cfg = NarratedDigits("val", p_unnarrated=0.9, filler_rate=0.8, noise=2.0, videos_per_task=1, cache_dir=None).config
    assert (cfg.p_unnarrated, cfg.filler_rate) == (0.95, 0.9)
    with pytest.raises(ValueError, match=r"noise=1e\+300 scales shift_mean"):
        NarratedDigits("val", shift_mean=1e10, noise=1e300, cache_dir=None)


def test_registry_prompts_and_tokenizer_cover_the_vocabulary():
    assert "narrated-digits" in DATASETS
    with pytest.raises(ValueError, match="narrated-digits"):
        build_dataset("imagenet", "train")
    ds = build_dataset("narrated-digits", "val", videos_per_task=1, cache_dir=None)
    assert isinstance(ds, NarratedDigits) and len(ds) == 12
    prompts = digit_prompts()
    assert prompts[0] == "write a zero" and prompts[8] == "write an eight" and len(prompts) == 10
    assert digit_prompts("a photo of {a} {w}")[1] == "a photo of a one"
    tok = Tokenizer.fit(ds.all_texts())
    assert (tok.encode(prompts) != 1).all()  # no unknown word in the prompts


def test_noise_scales_the_narration_knobs_together():
    from vtbench.data import NarratedDigits
    clean = NarratedDigits("val", noise=0.0, cache_dir=None).config
    assert (clean.shift_mean, clean.shift_std, clean.p_unnarrated, clean.filler_rate) == (0, 0, 0, 0)
    base = NarratedDigits("val", cache_dir=None).config
    double = NarratedDigits("val", noise=2.0, cache_dir=None).config
    assert double.shift_std == 2 * base.shift_std and double.shift_mean == 2 * base.shift_mean
    assert double.p_unnarrated == min(2 * base.p_unnarrated, 0.95)
    assert double.filler_rate == min(2 * base.filler_rate, 0.9)
    assert double.pixel_noise == base.pixel_noise  # only the alignment noise moves
    import pytest
    with pytest.raises(ValueError, match="noise must be a finite number >= 0"):
        NarratedDigits("val", noise=-1.0, cache_dir=None)
