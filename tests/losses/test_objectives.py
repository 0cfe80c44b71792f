"""Each objective against a slow, direct re-statement of its equation (tests/losses/reference.py)."""
from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from vtbench.losses import MILNCE, CaliNCE, InfoNCE, TempCLR, Temperature, VTTwins
from vtbench.losses.orders import sample_orders
from vtbench.losses.tda import augment

from . import reference as ref
from .conftest import make_batch


def rows(x):
    return x.tolist()


def valid_pairs(video, text, batch):
    """(clip, caption) vectors of the valid pairs, in batch order."""
    V, T = [], []
    for b in range(video.shape[0]):
        for k in range(text.shape[1]):
            c = int(batch["pair"][b, k])
            if c >= 0 and batch["text_mask"][b, k] and batch["video_mask"][b, c]:
                V.append(video[b, c].tolist())
                T.append(text[b, k].tolist())
    return V, T


@pytest.mark.parametrize("temperature,normalize", [(1.0, False), (0.5, True)])
def test_infonce_equals_its_equation(tiny, temperature, normalize):
    video, text, batch = tiny
    out = InfoNCE(temperature=temperature, normalize=normalize)(video, text, batch)
    V, T = valid_pairs(video, text, batch)
    if normalize:
        V, T = [ref.unit(v) for v in V], [ref.unit(t) for t in T]
    assert out.loss.item() == pytest.approx(ref.infonce(V, T, temperature), rel=1e-10)
    assert out.stats["pairs"] == len(V)


def test_infonce_learnable_temperature_gets_a_gradient(tiny):
    video, text, batch = tiny
    loss = InfoNCE(temperature=0.2, learn_temperature=True, normalize=True)
    loss(video.float(), text.float(), batch).loss.backward()
    assert loss.temperature.log_scale.grad is not None and loss.temperature.log_scale.grad != 0


def test_learnable_temperature_is_capped_at_100_without_losing_its_gradient(tiny):
    video, text, batch = tiny
    temperature = Temperature(0.2, learn=True)
    optimizer = torch.optim.SGD(temperature.parameters(), lr=1.0)
    with torch.no_grad():
        temperature.log_scale.fill_(math.log(500.0))  # as if a step had overshot the cap
    for _ in range(3):
        scale = temperature()
        assert scale.item() <= 100.0 * (1 + 1e-6)
        loss = InfoNCE(temperature=1.0, normalize=True)
        loss.temperature = temperature
        optimizer.zero_grad()
        loss(video.float(), text.float(), batch).loss.backward()
        assert temperature.log_scale.grad != 0  # a clamp inside the graph would give 0 here
        optimizer.step()
    assert temperature.log_scale.item() != pytest.approx(math.log(100.0))  # it moved off the cap


def test_milnce_equals_its_equation(tiny):
    video, text, batch = tiny
    out = MILNCE()(video, text, batch)
    V, bags = [], []
    for b in range(video.shape[0]):
        for c in range(video.shape[1]):
            bag = [text[b, k].tolist() for k in batch["candidates"][b, c].tolist() if k >= 0 and batch["text_mask"][b, k]]
            if batch["video_mask"][b, c] and bag:
                V.append(video[b, c].tolist())
                bags.append(bag)
    assert out.loss.item() == pytest.approx(ref.milnce(V, bags), rel=1e-10)
    assert out.stats["clips"] == len(V)


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("n,m", [(3, 3), (4, 2)])
def test_vt_twins_equals_s2dtw_pair_by_pair(symmetric, n, m):
    video, text, batch = make_batch(B=3, n=n, m=m, d=4, seed=1)
    loss = VTTwins(symmetric=symmetric, temperature=0.7, gamma=0.2, smooth_gamma=0.05, skip_cost=0.3)
    out = loss(video, text, batch)
    videos = [video[b, : int(batch["video_mask"][b].sum())].tolist() for b in range(3)]
    texts = [text[b, : int(batch["text_mask"][b].sum())].tolist() for b in range(3)]
    expected = ref.vt_twins(videos, texts, gamma=0.2, gs=0.05, tau=0.3, symmetric=symmetric, temperature=0.7)
    assert out.loss.item() == pytest.approx(expected, rel=1e-9)


def test_vt_twins_published_defaults():
    video, text, batch = make_batch(B=2, n=3, m=3, d=4, seed=2, holes=False)
    out = VTTwins()(video, text, batch)
    expected = ref.vt_twins([rows(v) for v in video], [rows(t) for t in text])
    assert out.loss.item() == pytest.approx(expected, rel=1e-9)


def test_vt_twins_rejects_a_mask_with_holes(tiny):
    video, text, batch = tiny
    batch["video_mask"][0, 1] = False
    with pytest.raises(ValueError, match="prefix mask"):
        VTTwins()(video, text, batch)


def test_vt_twins_tda_permutes_clips_and_captions_independently_in_training_only():
    video, text, batch = make_batch(B=3, n=4, m=4, d=5, seed=4)
    video, text = video.requires_grad_(), text.requires_grad_()
    loss = VTTwins(tda=True, tda_sharpness=0.0)  # sharpness 0: every local permutation equally likely
    torch.manual_seed(0)
    out = loss(video, text, batch)
    out.loss.backward()
    assert torch.isfinite(out.loss) and torch.isfinite(video.grad).all() and torch.isfinite(text.grad).all()
    torch.manual_seed(0)  # the same draws, made by hand: clips first, then captions
    n_len, m_len = batch["video_mask"].sum(1), batch["text_mask"].sum(1)
    videos = augment(nn.functional.normalize(video.detach(), dim=-1), n_len, 2, 0.0)
    texts = augment(nn.functional.normalize(text.detach(), dim=-1), m_len, 2, 0.0)
    assert not torch.equal(videos, nn.functional.normalize(video.detach(), dim=-1))
    assert out.loss.item() == pytest.approx(VTTwins()(videos, texts, batch).loss.item(), rel=1e-12)
    plain = VTTwins()(video, text, batch).loss.item()
    assert out.loss.item() != pytest.approx(plain)
    assert loss.eval()(video, text, batch).loss.item() == pytest.approx(plain, rel=1e-12)  # no augmentation at eval


def tempclr_batch():
    video, text, batch = make_batch(B=3, n=4, m=4, d=5, seed=3, holes=False)
    batch["pair"] = torch.tensor([[0, 1, 2, 3], [0, 1, 2, -1], [1, 2, -1, -1]])  # video 2: only 2 pairs
    return video, text, batch


@pytest.mark.parametrize("aligner", ["soft_dtw", "otam"])
def test_tempclr_equals_its_equation(aligner):
    video, text, batch = tempclr_batch()
    loss = TempCLR(n_pairs=3, n_orders=10, aligner=aligner, alpha=0.7)  # 10 >= 3! - 1: every order
    out = loss(video, text, batch)
    V, T = valid_pairs(video, text, batch)
    clip = ref.infonce(V, T, 1.0)
    orders = [p for p in itertools.permutations(range(3)) if p != (0, 1, 2)]
    align = []
    for b in (0, 1):  # the videos with >= 3 pairs; their first 3
        ks = [k for k in range(4) if batch["pair"][b, k] >= 0][:3]
        texts = [text[b, k].tolist() for k in ks]
        clips = [video[b, int(batch["pair"][b, k])].tolist() for k in ks]
        align.append(ref.tempclr_align(texts, clips, orders, 0.1, aligner))
    expected = 0.3 * clip + 0.7 * sum(align) / 2
    assert out.loss.item() == pytest.approx(expected, rel=1e-9)
    assert out.stats["align_videos"] == 2 and out.stats["align_skipped"] == 0


def test_tempclr_segment_shuffles_permute_clips_within_segments():
    video, text, batch = tempclr_batch()
    batch["segment_ids"] = torch.tensor([[0, 0, 1, 1]] * 3)
    out = TempCLR(n_pairs=3, n_orders=10, shuffle="segments")(video, text, batch)
    # clips 0, 1, 2 with segments [0, 0, 1] -> the orders with each segment contiguous
    orders = [(1, 0, 2), (2, 0, 1), (2, 1, 0)]
    align = []
    for b in (0, 1):
        texts = [text[b, k].tolist() for k in range(3)]
        clips = [video[b, k].tolist() for k in range(3)]
        C = [[ref.cosine_cost(t, v) for v in clips] for t in texts]
        logits = [-ref.soft_dtw([[row[j] for j in o] for row in C], 0.1) for o in [(0, 1, 2), *orders]]
        align.append(ref.logsumexp(logits) - logits[0])
    clip = ref.infonce(*valid_pairs(video, text, batch), 1.0)
    assert out.loss.item() == pytest.approx(0.3 * clip + 0.7 * sum(align) / 2, rel=1e-9)


def test_tempclr_segment_shuffles_need_segment_ids():
    video, text, batch = tempclr_batch()
    with pytest.raises(ValueError, match=r"shuffle='segments' needs batch\['segment_ids'\]"):
        TempCLR(n_pairs=3, shuffle="segments")(video, text, batch)
    batch["segment_ids"] = torch.zeros(3, 3, dtype=torch.long)
    with pytest.raises(ValueError, match=r"batch\['segment_ids'\] has shape \(3, 3\), expected \(3, 4\)"):
        TempCLR(n_pairs=3, shuffle="segments")(video, text, batch)


def test_tempclr_reports_a_batch_where_no_video_qualifies():
    video, text, batch = tempclr_batch()
    loss = TempCLR(n_pairs=5)
    with pytest.warns(UserWarning, match="no video"):
        out = loss(video, text, batch)
    assert out.stats["align_skipped"] == 1.0 and out.stats["align_videos"] == 0
    clip = ref.infonce(*valid_pairs(video, text, batch), 1.0)
    assert out.loss.item() == pytest.approx(0.3 * clip, rel=1e-9)


def test_tempclr_samples_shuffles_when_they_are_many(monkeypatch):
    video, text, batch = make_batch(B=2, n=6, m=6, d=4, holes=False)
    drawn = []

    def recording(*args, **kwargs):
        drawn.append(sample_orders(*args, **kwargs))
        return drawn[-1]

    monkeypatch.setattr("vtbench.losses.tempclr.sample_orders", recording)
    torch.manual_seed(0)
    out = TempCLR(n_pairs=6, n_orders=7)(video, text, batch)  # 719 orders exist: 7 drawn a video
    assert out.stats["align_videos"] == 2 and len(drawn) == 2
    for orders in drawn:
        shuffles = {tuple(o) for o in orders.tolist()}
        assert len(shuffles) == 7 and tuple(range(6)) not in shuffles
    clip = ref.infonce(*valid_pairs(video, text, batch), 1.0)
    align = [ref.tempclr_align(text[b].tolist(), video[b].tolist(), orders.tolist()) for b, orders in enumerate(drawn)]
    assert out.loss.item() == pytest.approx(0.3 * clip + 0.7 * sum(align) / 2, rel=1e-9)


def test_vt_twins_lengths_survive_low_precision_embeddings():
    """A length travels to the other processes as a number: 257 clips must stay 257 in bfloat16."""
    video, text, batch = make_batch(B=2, n=258, m=3, d=4, holes=False)
    batch["video_mask"][1, 257] = False
    seen = []
    loss = VTTwins()
    scores = loss.scores
    loss.scores = lambda videos, texts, n_len, m_len: seen.append(n_len.tolist()) or scores(videos, texts, n_len, m_len)
    loss(video.bfloat16(), text.bfloat16(), batch)
    assert seen == [[258, 257]]


def test_cali_nce_equals_its_reconstruction(tiny):
    video, text, batch = tiny
    torch.manual_seed(0)
    loss = CaliNCE(embed_dim=5, temperature=0.2, pc_temperature=0.3, pc_weight=0.5).double()
    out = loss(video, text, batch)
    V, T = valid_pairs(video, text, batch)
    V, T = [ref.unit(v) for v in V], [ref.unit(t) for t in T]
    P = len(V)

    def head(v, t):
        with torch.no_grad():
            return loss.head(torch.tensor(v, dtype=torch.float64), torch.tensor(t, dtype=torch.float64)).item()

    def bce(logit, label):
        return ref.logsumexp([0.0, logit]) - label * logit

    corr = sum(bce(head(V[p], T[p]), 1) for p in range(P)) / P
    corr += sum(bce(head(V[p], T[q]), 0) for p in range(P) for q in range(P) if q != p) / (P * (P - 1))
    s = [1 / (1 + ref.math.exp(-head(V[p], T[p]))) for p in range(P)]
    w = [x / (sum(s) / P) for x in s]
    tau = 0.2
    nce = sum(w[p] * (ref.logsumexp([ref.dot(V[p], T[q]) / tau for q in range(P)]) - ref.dot(V[p], T[p]) / tau
                      + ref.logsumexp([ref.dot(T[p], V[q]) / tau for q in range(P)]) - ref.dot(T[p], V[p]) / tau)
              for p in range(P)) / P
    clips = [(b, c) for b in range(3) for c in range(4) if batch["video_mask"][b, c]]
    units = {bc: ref.unit(video[bc].tolist()) for bc in clips}
    pc, count = 0.0, 0
    for b, c in clips:
        if (b, c + 1) not in units:
            continue
        seq = torch.tensor([units[(b, k)] for k in range(c + 1)], dtype=torch.float64)[None]
        with torch.no_grad():
            pred = ref.unit(loss.predict(loss.predictor(seq)[0][0, -1]).tolist())
        scores = {bc: ref.dot(pred, units[bc]) / 0.3 for bc in clips}
        pc += ref.logsumexp(list(scores.values())) - scores[(b, c + 1)]
        count += 1
    expected = corr + nce + 0.5 * pc / count
    assert out.loss.item() == pytest.approx(expected, rel=1e-8)
    assert out.stats["pc"] == pytest.approx(pc / count, rel=1e-8)


def test_cali_nce_without_its_terms_is_infonce(tiny):
    video, text, batch = tiny
    plain = CaliNCE(embed_dim=5, correspondence=False, calibrate=False, predictive=False, temperature=0.5)
    V, T = valid_pairs(video, text, batch)
    expected = ref.infonce([ref.unit(v) for v in V], [ref.unit(t) for t in T], 0.5)
    assert plain(video, text, batch).loss.item() == pytest.approx(expected, rel=1e-10)
    # the docs' equivalence: the infonce baseline on normalised embeddings at Cali-NCE's temperature
    same = InfoNCE(temperature=0.5, normalize=True)(video, text, batch).loss.item()
    assert plain(video, text, batch).loss.item() == pytest.approx(same, rel=1e-10)


def test_cali_nce_calibration_needs_correspondence():
    with pytest.raises(ValueError, match="correspondence"):
        CaliNCE(correspondence=False, calibrate=True)
