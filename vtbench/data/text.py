"""A word-level tokenizer: lowercase, split into words, map words to ids.

Ids: 0 is padding, 1 is an unknown word, words start at 2 (most frequent first when fitted).

>>> tok = Tokenizer.fit(["now we write a three", "write a seven"])
>>> tok.encode(["write a nine"], max_len=4).tolist()
[[3, 2, 1, 0]]
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence

import torch

PAD, UNK = 0, 1
SPECIALS = ("<pad>", "<unk>")
_WORD = re.compile(r"[^\W_]+(?:'[^\W\d_]+)?")  # letters and digits of any script; then 's, 't, ...


def words(text: str) -> list[str]:
    """Lowercase words of ``text``: runs of letters and digits of any script (NFKC-normalised, so
    a composed and a decomposed "é" are one word), an apostrophe suffix (' or ’) attached.

    >>> words("Sauté the jalapeño, don’t burn it!")
    ['sauté', 'the', 'jalapeño', "don't", 'burn', 'it']
    """
    return _WORD.findall(unicodedata.normalize("NFKC", text).lower().replace("\u2019", "'"))


def _texts(texts, name: str) -> list[str]:
    """``texts`` as a list of strings: a lone string is a mistake (it would be read letter by letter)."""
    if isinstance(texts, str):
        raise TypeError(f"{name} must be a sequence of texts, got one string: pass [{texts[:30]!r}]")
    texts = list(texts)
    bad = [type(t).__name__ for t in texts if not isinstance(t, str)]
    if bad:
        raise TypeError(f"{name} must hold strings, got {bad[0]}")
    return texts


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
        counts = Counter(w for text in _texts(texts, "texts") for w in words(text))
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
        rows = [self.ids(t) for t in _texts(texts, "texts")]
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
        ids = [int(i) for i in (ids.flatten().tolist() if isinstance(ids, torch.Tensor) else ids)]
        bad = [i for i in ids if not 0 <= i < len(table)]
        if bad:
            raise ValueError(f"ids must lie in 0..{len(table) - 1} (this tokenizer's {len(table)} ids), got {bad[:5]}")
        return " ".join(table[i] for i in ids if i != PAD)

    def state_dict(self) -> dict:
        return {"vocab": list(self.vocab)}

    @classmethod
    def from_state_dict(cls, state: dict) -> Tokenizer:
        if not isinstance(state, dict) or not isinstance(state.get("vocab"), (list, tuple)):
            raise ValueError(f"a tokenizer state is {{'vocab': [words]}}, got {type(state).__name__}"
                             + (f" with keys {sorted(state)}" if isinstance(state, dict) else ""))
        return cls(state["vocab"])

    def __repr__(self) -> str:
        return f"Tokenizer({len(self)} ids)"
