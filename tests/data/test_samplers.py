"""Samplers and collate: the batch format of docs/ARCHITECTURE.md section 4, shapes and masks."""
import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from vtbench.data import SAMPLERS, MethodCollate, NarratedDigits, Tokenizer, collate, get_sampler
from vtbench.data.samplers import clip_start


def make_item(spans, T=40, D=3, texts=None):
    """Feature row t is filled with t, so a clip's rows can be read off its values."""
    starts, ends = zip(*spans) if spans else ((), ())
    return {"video_id": "v", "features": torch.arange(T, dtype=torch.float32)[:, None].repeat(1, D),
            "starts": torch.tensor(starts, dtype=torch.float32), "ends": torch.tensor(ends, dtype=torch.float32),
            "texts": texts or [f"caption {i}" for i in range(len(spans))]}


SPANS = [(20, 26), (2, 8), (10, 13), (30, 39), (12, 18)]  # deliberately not in time order
TOK = Tokenizer.fit([f"caption {i}" for i in range(10)])


def rows(clip):
    return clip[:, 0].long().tolist()


def test_clip_start_centres_and_clamps():
    assert clip_start(10, 20, 4, 40) == 13  # centred: rows 13..16 of [10, 20)
    assert clip_start(0, 2, 4, 40) == 0  # clamped at the start
    assert clip_start(37, 40, 4, 40) == 36  # and at the end
    assert clip_start(0, 3, 8, 5) == 0  # video shorter than a clip
    rng = np.random.default_rng(0)
    assert {clip_start(10, 20, 4, 40, rng) for _ in range(200)} == set(range(10, 17))


def test_vt_twins_consecutive_captions_with_clips_inside():
    s = SAMPLERS["vt-twins"](make_item(SPANS), np.random.default_rng(0), n=3, clip_len=2)
    order = np.argsort([a for a, _ in SPANS])
    assert s["texts"] in [[f"caption {i}" for i in order[j:j + 3]] for j in range(3)]
    for clip, text, (t0, t1) in zip(s["clips"], s["texts"], s["clip_times"].tolist()):
        a, b = SPANS[int(text.split()[1])]
        assert a <= rows(clip)[0] and rows(clip)[-1] < b and rows(clip) == list(range(int(t0), int(t1)))
    assert s["pair"].tolist() == [0, 1, 2] and s["clips"].shape == (3, 2, 3)
    few = SAMPLERS["vt-twins"](make_item(SPANS[:2]), 0, n=8)
    assert len(few["texts"]) == 2 and few["clips"].shape == (2, 4, 3)


def test_tempclr_non_overlapping_in_order_or_dropped():
    overlapping = SPANS + [(5, 11), (21, 31)]
    for seed in range(20):
        s = SAMPLERS["tempclr"](make_item(overlapping), seed, n=4, clip_len=2)
        spans = [overlapping[int(t.split()[1])] for t in s["texts"]]
        assert all(e0 <= s1 for (_, e0), (s1, _) in zip(spans, spans[1:]))  # ordered, disjoint
        assert (s["clip_times"][1:, 0] >= s["clip_times"][:-1, 1]).all()
    assert SAMPLERS["tempclr"](make_item([(0, 10), (5, 15), (8, 20)]), 0, n=2) is None
    batch = collate([SAMPLERS["tempclr"](make_item(x), 0, n=2) for x in ([(0, 10), (5, 15)], SPANS)], TOK)
    assert batch["dropped"] == 1 and batch["video"].shape[0] == 1


@pytest.mark.parametrize("jitter", [False, True])
def test_tempclr_clips_of_back_to_back_short_captions_do_not_overlap(jitter):
    """Captions [10, 11] and [11, 12] are disjoint, but 4-row clips centred on them are not."""
    assert SAMPLERS["tempclr"](make_item([(10, 11), (11, 12)]), 0, n=2, clip_len=4, jitter=jitter) is None
    spans = [(10, 11), (11, 12), (12, 13), (13, 14), (14, 15), (15, 16), (20, 30), (30, 31), (38.6, 39)]
    for seed in range(30):
        s = SAMPLERS["tempclr"](make_item(spans), seed, n=4, clip_len=4, jitter=jitter)
        times = s["clip_times"]
        assert (times[1:, 0] >= times[:-1, 1]).all(), (seed, times.tolist())
        assert [rows(clip) for clip in s["clips"]] == [list(range(int(a), int(b))) for a, b in times.tolist()]
        starts = [spans[int(t.split()[1])][0] for t in s["texts"]]
        assert starts == sorted(starts)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 36), st.integers(0, 6)), min_size=1, max_size=8), st.integers(1, 4),
       st.integers(1, 5), st.booleans(), st.integers(0, 2**31))
@example(raw=[(4, 6), (8, 1), (10, 4), (14, 3), (17, 6), (28, 1)], n=5, clip_len=4, jitter=False, seed=0)
def test_tempclr_takes_every_video_that_has_n_disjoint_pairs(raw, n, clip_len, jitter, seed):
    """Brute force over every subset: a sample exactly when n pairs with disjoint captions and
    disjoint clip rows exist (the greedy pick alone missed some: a short caption's clip can reach
    past a longer caption's), and any sample is such a chain."""
    import itertools

    from vtbench.data.samplers import _clip_rows

    spans = [(float(a), float(min(a + d, 40))) for a, d in raw]
    windows = [_clip_rows(a, b, clip_len, 40, jitter) for a, b in spans]

    def chain(subset):
        ordered = sorted(subset, key=lambda i: (spans[i][1], spans[i][0]))
        return all(spans[j][0] >= spans[i][1] and windows[j][0] >= windows[i][1] for i, j in zip(ordered, ordered[1:]))
    exists = any(chain(c) for c in itertools.combinations(range(len(spans)), n))
    sample = SAMPLERS["tempclr"](make_item(spans), seed, n=n, clip_len=clip_len, jitter=jitter)
    assert (sample is not None) == exists
    if sample is not None:
        picked = [int(t.split()[1]) for t in sample["texts"]]
        assert len(set(picked)) == n and chain(picked)
        assert [spans[i][0] for i in picked] == sorted(spans[i][0] for i in picked)  # in temporal order


def test_tempclr_draws_the_chains_uniformly_when_the_greedy_pick_falls_short():
    # the greedy pick takes (8, 9) first, whose clip (rows 7..10) blocks (10, 14): it finds 5 pairs,
    # where two chains of 6 exist, (0, 2, 3, 4, 5, 6) and (0, 2, 3, 4, 5, 7) ((33, 34) and (36, 37)
    # are disjoint captions, but their clips, rows 32..35 and 35..38, are not)
    spans = [(4, 10), (8, 9), (10, 14), (14, 17), (17, 23), (28, 29), (33, 34), (36, 37)]
    counts = {}
    for seed in range(400):
        texts = SAMPLERS["tempclr"](make_item(spans), seed, n=6, clip_len=4)["texts"]
        key = tuple(int(t.split()[1]) for t in texts)
        counts[key] = counts.get(key, 0) + 1
    assert set(counts) == {(0, 2, 3, 4, 5, 6), (0, 2, 3, 4, 5, 7)}
    assert all(140 < c < 260 for c in counts.values()), counts  # 200 each expected, sd 10
    assert SAMPLERS["tempclr"](make_item(spans), 0, n=7, clip_len=4) is None


def test_milnce_candidates_are_the_k_nearest_captions():
    item = make_item(SPANS)
    s = SAMPLERS["milnce"](item, np.random.default_rng(1), n=2, k=3, clip_len=2)
    centres = np.array([(a + b) / 2 for a, b in SPANS])
    assert s["candidates"].shape == (2, 3)
    for clip_i, (t0, t1) in enumerate(s["clip_times"].tolist()):
        expected = set(np.argsort(np.abs(centres - (t0 + t1) / 2), kind="stable")[:3].tolist())
        got = {int(s["texts"][c].split()[1]) for c in s["candidates"][clip_i].tolist()}
        assert got == expected
    anchors = [j for j, p in enumerate(s["pair"].tolist()) if p >= 0]
    assert sorted(s["pair"][anchors].tolist()) == [0, 1]
    text_starts = [SPANS[int(t.split()[1])][0] for t in s["texts"]]
    assert text_starts == sorted(text_starts)
    short = SAMPLERS["milnce"](make_item(SPANS[:2]), 0, n=4, k=5)
    assert short["candidates"].shape == (2, 5) and (short["candidates"][:, 2:] == -1).all()


def test_pairs_distinct_captions():
    s = SAMPLERS["pairs"](make_item(SPANS), 3, n=4)
    assert len(set(s["texts"])) == 4 and s["pair"].tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_no_caption_means_dropped(name):
    assert SAMPLERS[name](make_item([]), 0) is None


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_collate_pads_and_masks(name):
    lengths = [5, 2, 1, 3]
    samples = [SAMPLERS[name](make_item(SPANS[:k]), 0, n=3, clip_len=4) for k in lengths]
    kept = [s for s in samples if s is not None]
    b = collate(samples, TOK, max_len=6)
    B, n, m = len(kept), max(len(s["clips"]) for s in kept), max(len(s["texts"]) for s in kept)
    assert b["video"].shape == (B, n, 4, 3) and b["video_mask"].shape == (B, n) and b["times"].shape == (B, n, 2)
    assert b["text"].shape == (B, m, 6) and b["text_mask"].shape == b["pair"].shape == (B, m)
    assert b["dropped"] == len(samples) - B and len(b["video_id"]) == B
    for i, s in enumerate(kept):
        nb, mb = len(s["clips"]), len(s["texts"])
        assert b["video_mask"][i].tolist() == [True] * nb + [False] * (n - nb)
        assert b["text_mask"][i].tolist() == [True] * mb + [False] * (m - mb)
        assert (b["video"][i, nb:] == 0).all() and (b["text"][i, mb:] == 0).all() and (b["pair"][i, mb:] == -1).all()
        assert torch.equal(b["video"][i, :nb], s["clips"]) and (b["text"][i, :mb, :2] > 1).all()
        assert ((b["pair"][i] >= -1) & (b["pair"][i] < nb)).all()
    if name == "milnce":
        assert b["candidates"].shape[:2] == (B, n)
        assert (b["candidates"][~b["video_mask"]] == -1).all()
        valid = b["candidates"] >= 0
        assert (b["text_mask"].gather(1, b["candidates"].clamp_min(0).flatten(1)).view_as(valid) | ~valid).all()
    else:
        assert "candidates" not in b


def test_all_dropped_gives_an_empty_batch():
    b = collate([None, None], TOK)
    assert b["dropped"] == 2 and b["video"].shape[0] == 0 and b["text"].shape[0] == 0


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="milnce.*pairs.*tempclr.*vt-twins"):
        get_sampler("dtw")
    with pytest.raises(ValueError, match="vt-twins"):
        MethodCollate("nope", TOK)
    with pytest.raises(ValueError, match="valid"):
        MethodCollate("vt-twins", TOK, k=3)


def test_method_collate_is_reproducible_on_narrated_digits():
    ds = NarratedDigits("val", videos_per_task=1, cache_dir=None)
    tok = Tokenizer.fit(ds.all_texts())
    items = [ds[i] for i in range(8)]
    a, b = MethodCollate("vt-twins", tok, seed=1, n=4)(items), MethodCollate("vt-twins", tok, seed=1, n=4)(items)
    assert torch.equal(a["video"], b["video"]) and torch.equal(a["text"], b["text"])
    assert a["video"].shape[-1] == 64 and a["video"].shape[2] == 4
    loader = torch.utils.data.DataLoader(ds, batch_size=4, collate_fn=MethodCollate("milnce", tok, n=2, k=3))
    batch = next(iter(loader))
    assert batch["candidates"].shape == (4, 2, 3) and (batch["text"][batch["text_mask"]][:, 0] > 1).all()


def test_milnce_candidates_hold_the_clips_own_caption_even_when_jittered():
    """A jittered clip inside a long caption sits far from that caption's centre."""
    item = make_item([(0, 100), (6, 8), (9, 11), (14, 16)], T=100)
    for seed in range(200):
        s = SAMPLERS["milnce"](item, seed, n=4, k=2, jitter=True)
        for text, clip in enumerate(s["pair"].tolist()):
            if clip >= 0:
                assert text in s["candidates"][clip].tolist(), seed


@pytest.mark.parametrize("workers", [0, 1])
def test_method_collate_draws_anew_every_epoch_and_again_with_the_same_seed(workers):
    ds = NarratedDigits("val", videos_per_task=1, cache_dir=None)
    tok = Tokenizer.fit(ds.all_texts())
    loader = torch.utils.data.DataLoader(ds, batch_size=8, num_workers=workers, generator=torch.Generator(),
                                         collate_fn=MethodCollate("pairs", tok, n=2, jitter=True))
    def epoch(seed=None):
        if seed is not None:
            loader.generator.manual_seed(seed)
        return torch.cat([batch["times"] for batch in loader])
    first, second = epoch(7), epoch()
    assert not torch.equal(first, second)  # other clips in the second epoch, with or without workers
    if workers:
        assert torch.equal(epoch(7), first)  # the loader's generator seeds the workers


spans_strategy = st.lists(st.tuples(st.floats(0, 30), st.floats(0, 12)), min_size=1, max_size=9)


@settings(max_examples=60, deadline=None)
@given(spans=spans_strategy, T=st.integers(1, 45), name=st.sampled_from(sorted(SAMPLERS)),
       n=st.integers(1, 6), clip_len=st.integers(1, 6), seed=st.integers(0, 99))
def test_samples_are_consistent(spans, T, name, n, clip_len, seed):
    spans = [(min(a, T - 0.5), min(a + d, T)) for a, d in spans]
    s = SAMPLERS[name](make_item(spans, T=T), seed, n=n, clip_len=clip_len)
    if s is None:
        assert name == "tempclr"
        return
    nb, mb = len(s["clips"]), len(s["texts"])
    assert 1 <= nb <= n and s["clips"].shape == (nb, clip_len, 3) and s["clip_times"].shape == (nb, 2)
    assert (s["clip_times"][:, 0] >= 0).all() and (s["clips"] <= T - 1).all()
    assert s["pair"].shape == (mb,) and ((s["pair"] >= -1) & (s["pair"] < nb)).all()
    if name == "milnce":
        assert s["candidates"].shape[0] == nb and (s["candidates"] < mb).all()
    if name == "tempclr":
        assert (s["clip_times"][1:, 0] >= s["clip_times"][:-1, 1]).all()
