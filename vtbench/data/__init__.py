"""Data: the narrated-digits benchmark, real-format loaders, the tokenizer and method samplers.

>>> from vtbench.data import build_dataset, Tokenizer, MethodCollate
>>> train = build_dataset("narrated-digits", "train", seed=0)      # doctest: +SKIP
>>> tok = Tokenizer.fit(train.all_texts())                          # doctest: +SKIP
>>> loader = torch.utils.data.DataLoader(train, batch_size=16, shuffle=True,
...                                      collate_fn=MethodCollate("vt-twins", tok, n=4))  # doctest: +SKIP
"""
from __future__ import annotations

from collections.abc import Callable

from .digit_words import DIGIT_WORDS, digit_prompts, step_text
from .loaders import MSRVTT, CrossTask, HowTo100M, YouCook2
from .narrated_digits import NarratedDigits
from .samplers import SAMPLERS, MethodCollate, collate, get_sampler
from .text import Tokenizer

# YouCook2's test annotations are not public: "test" is the validation subset, as papers evaluate on.
_YOUCOOK2_SUBSETS = {"train": "training", "val": "validation", "test": "validation"}


def youcook2_subset(split: str) -> str:
    """The subset of YouCook2's official JSON that a split reads (train: training, val and test:
    validation)."""
    return _YOUCOOK2_SUBSETS.get(split, split)


def _youcook2(split: str, **kwargs):
    """The official JSON holds every subset: ``split`` picks one (:func:`youcook2_subset`) unless
    ``subset`` is given."""
    if str(kwargs.get("csv_or_json", "")).lower().endswith(".json"):
        kwargs.setdefault("subset", youcook2_subset(split))
    return YouCook2(**kwargs)


def _files_are_the_split(cls):
    """Real formats other than YouCook2's JSON: the files passed in are the split."""
    def build(split: str, **kwargs):
        return cls(**kwargs)
    build.__doc__ = f"{cls.__name__}(**kwargs); the files you pass are the split."
    return build


DATASETS: dict[str, Callable] = {
    "narrated-digits": NarratedDigits,
    "howto100m": _files_are_the_split(HowTo100M),
    "youcook2": _youcook2,
    "crosstask": _files_are_the_split(CrossTask),
    "msrvtt": _files_are_the_split(MSRVTT),
}


def build_dataset(name: str, split: str = "train", **kwargs):
    """``DATASETS[name](split, **kwargs)``; e.g. ``build_dataset("narrated-digits", "test", seed=1)``,
    ``build_dataset("howto100m", "train", captions="caps.json", features="features/")``."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(sorted(DATASETS))}")
    return DATASETS[name](split, **kwargs)


__all__ = [
    "DATASETS", "DIGIT_WORDS", "SAMPLERS", "CrossTask", "HowTo100M", "MSRVTT", "MethodCollate",
    "NarratedDigits", "Tokenizer", "YouCook2", "build_dataset", "collate", "digit_prompts",
    "get_sampler", "step_text", "youcook2_subset",
]
