"""A word-level tokenizer: lowercase, split into words, map words to ids.

Ids: 0 is padding, 1 is an unknown word, words start at 2 (most frequent first when fitted).

>>> tok = Tokenizer.fit(["now we write a three", "write a seven"])
>>> tok.encode(["write a nine"], max_len=4).tolist()
[[3, 2, 1, 0]]
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import torch

PAD, UNK = 0, 1
SPECIALS = ("<pad>", "<unk>")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def words(text: str) -> list[str]:
    """Lowercase words of ``text`` (letters and digits; an apostrophe suffix stays attached)."""
    return _WORD.findall(text.lower())


class Tokenizer:
    """Maps texts to padded id tensors; ``len(tok)`` counts the two special ids too."""

    def __init__(self, vocab: Sequence[str]):
        vocab = list(vocab)
        if len(set(vocab)) != len(vocab):
            raise ValueError("vocab has repeated words")
        bad = [w for w in vocab if w in SPECIALS or words(w) != [w]]
        if bad:
            raise ValueError(f"vocab entries must be single lowercase words, got {bad[:5]}")
        self.vocab = vocab
        self.index = {w: i + len(SPECIALS) for i, w in enumerate(vocab)}

    @classmethod
    def fit(cls, texts: Iterable[str], max_size: int | None = None) -> Tokenizer:
        """Vocabulary of the words in ``texts``, most frequent first (ties alphabetical).

        ``max_size`` bounds ``len(tok)``, the two special ids included.
        """
        counts = Counter(w for text in texts for w in words(text))
        vocab = sorted(counts, key=lambda w: (-counts[w], w))
        if max_size is not None:
            if max_size < len(SPECIALS):
                raise ValueError(f"max_size must be at least {len(SPECIALS)}, got {max_size}")
            vocab = vocab[: max_size - len(SPECIALS)]
        return cls(vocab)

    def __len__(self) -> int:
        return len(self.vocab) + len(SPECIALS)

    def ids(self, text: str) -> list[int]:
        return [self.index.get(w, UNK) for w in words(text)]

    def encode(self, texts: Sequence[str], max_len: int | None = None) -> torch.Tensor:
        """(K, L) ids, 0-padded; L = ``max_len`` when given (longer texts truncated), else the
        longest text (at least 1, so an empty text is one padding token)."""
        rows = [self.ids(t) for t in texts]
        length = max_len if max_len is not None else max([len(r) for r in rows] + [1])
        if length < 1:
            raise ValueError(f"max_len must be positive, got {max_len}")
        out = torch.zeros(len(rows), length, dtype=torch.long)
        for k, row in enumerate(rows):
            row = row[:length]
            out[k, : len(row)] = torch.tensor(row, dtype=torch.long)
        return out

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """Words of one row of ids, padding dropped and unknown words shown as ``<unk>``."""
        table = list(SPECIALS) + self.vocab
        return " ".join(table[int(i)] for i in ids if int(i) != PAD)

    def state_dict(self) -> dict:
        return {"vocab": list(self.vocab)}

    @classmethod
    def from_state_dict(cls, state: dict) -> Tokenizer:
        return cls(state["vocab"])

    def __repr__(self) -> str:
        return f"Tokenizer({len(self)} ids)"
