import pytest
import torch


def make_batch(B=3, n=4, m=4, d=5, seed=0, holes=True):
    """Random float64 embeddings and a batch with some padding and unpaired captions."""
    g = torch.Generator().manual_seed(seed)
    video = torch.randn(B, n, d, generator=g, dtype=torch.float64)
    text = torch.randn(B, m, d, generator=g, dtype=torch.float64)
    n_len = torch.tensor([n, n - 1, n - 2][:B] + [n] * max(0, B - 3)) if holes else torch.full((B,), n)
    m_len = torch.tensor([m, m - 1, m][:B] + [m] * max(0, B - 3)) if holes else torch.full((B,), m)
    video_mask = torch.arange(n) < n_len[:, None]
    text_mask = torch.arange(m) < m_len[:, None]
    pair = torch.minimum(torch.arange(m).repeat(B, 1), (n_len - 1)[:, None])
    if holes:
        pair[0, 1] = -1
    pair = pair.masked_fill(~text_mask, -1)
    k = torch.arange(n)[:, None] + torch.tensor([0, 1])  # clip c: captions c and c + 1
    candidates = k.repeat(B, 1, 1)
    candidates = candidates.masked_fill(candidates >= m_len[:, None, None], -1)
    batch = dict(video_mask=video_mask, text_mask=text_mask, pair=pair, candidates=candidates)
    return video, text, batch


@pytest.fixture
def tiny():
    return make_batch()
