"""The common base of the real-format loaders (vtbench.data.loaders): checks, skips, items.

Every loader reads precomputed features, one ``<video_id>.npy`` of shape (T, D) per video, one row
per second, and yields the common item of docs/ARCHITECTURE.md section 2: ``video_id``,
``features`` (T, D), ``starts``/``ends`` (K,) in seconds and ``texts`` (K), sorted by start.

Bad input never crashes an epoch. Everything that can be checked cheaply is checked at
construction (feature files are opened memory-mapped to read their shape, not loaded); an entry
that fails is left out, counted in ``ds.skipped`` (a Counter by reason) and reported in one
warning per reason that names the offending file. When nothing usable remains, the constructor
raises ``ValueError`` naming the input. Every item has the dataset's width ``ds.feature_dim``: the
D of most usable videos (on a tie, of the first of them). Reasons, and what each counts:

=========================  ====================================================================
missing feature file       videos whose ``<video_id>.npy`` does not exist
unreadable feature file    videos whose feature file is not a numeric 2-D array with T >= 1
malformed JSON             caption files (folder form) that are not valid JSON
malformed captions         videos whose caption record lacks equal-length start/end/text lists
malformed row              CSV rows or annotation lines with missing, extra (an unquoted comma?)
                           or non-numeric fields
start > end                captions whose start lies after their end
empty text                 captions whose text has no word (empty, blank, only punctuation or symbols)
times beyond features      captions starting before 0 or ending after T + ``time_tolerance``
no usable captions         videos left with no caption after the checks above
feature width mismatch     videos otherwise usable whose feature width D is not ``ds.feature_dim``
missing annotation file    CrossTask videos without ``annotations/<task>_<vid>.csv``
unknown task               CrossTask videos of a task absent from the task files
step out of range          CrossTask annotation lines whose step is above n_steps
step below 1 (a 0-based    CrossTask annotation files with a step of 0 or below: such a file counts
file?): file skipped       from 0, and read as 1-based each of its lines would name the step
                           before its own, so the whole file is left out
malformed task block       CrossTask task-file blocks that are not id/title/url/n_steps/steps
unreadable at load time    feature files that failed when read in ``__getitem__`` (changed since
                           construction); the next usable item is returned in their place
=========================  ====================================================================
"""
from __future__ import annotations

import csv
import json
import math
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .text import words


@dataclass
class Caption:
    start: float
    end: float
    text: str
    step: int | None = None  # CrossTask: the step index from 0


@dataclass
class RawVideo:
    """One video as parsed from the input files, before checking it against its features."""

    video_id: str
    captions: list  # raw (start, end, text[, step]) tuples, checked by _check_captions
    source: Path  # the file that described it, named in warnings
    extras: dict = field(default_factory=dict)


class SkipLog:
    """Counts left-out entries by reason and remembers the first file of each reason."""

    def __init__(self, owner: str):
        self.owner, self.counts, self.first = owner, Counter(), {}

    def add(self, reason: str, file, detail: str = "", n: int = 1) -> None:
        self.counts[reason] += n
        self.first.setdefault(reason, f"{file}" + (f" ({detail})" if detail else ""))

    def warn(self) -> None:
        for reason, n in self.counts.items():
            warnings.warn(f"{self.owner}: skipped {n} x {reason!r}, first in {self.first[reason]}", stacklevel=4)

    def summary(self) -> str:
        return ", ".join(f"{n} x {r!r}" for r, n in self.counts.items()) or "nothing parsed"


class CaptionedFeatures(Dataset):
    """Base of the real-format loaders: checked entries, features read from disk per item."""

    def __init__(self, videos: list[RawVideo], features, source, skips: SkipLog, *, time_tolerance: float = 1.0):
        if (isinstance(time_tolerance, bool) or not isinstance(time_tolerance, (int, float))
                or not math.isfinite(time_tolerance) or time_tolerance < 0):
            raise ValueError(f"time_tolerance must be a finite number of seconds >= 0, got {time_tolerance!r}")
        self.features_dir, self.source = Path(features), Path(source)
        checked = [self._check_video(video, skips, time_tolerance) for video in videos]
        checked = [entry for entry in checked if entry is not None]
        # One width for all items: a batch of mixed widths would crash a sampler, naming no file.
        widths = Counter(entry["dim"] for entry in checked)  # most_common: ties in first-seen order
        self.feature_dim: int | None = widths.most_common(1)[0][0] if widths else None
        self.entries: list[dict] = []
        for entry in checked:
            if entry["dim"] == self.feature_dim:
                self.entries.append(entry)
            else:
                skips.add("feature width mismatch", entry["path"],
                          f"D = {entry['dim']}, the dataset's D = {self.feature_dim}")
        self.skipped: Counter = skips.counts
        self._skips = skips
        skips.warn()
        if not self.entries:
            raise ValueError(f"{self.source}: no usable video ({skips.summary()})")

    def _check_video(self, video: RawVideo, skips: SkipLog, tol: float) -> dict | None:
        path = self.features_dir / f"{video.video_id}.npy"
        shape = feature_shape(path, skips)
        if shape is None:
            return None
        n_rows, dim = shape
        captions = _check_captions(video, self.raw_captions(video, n_rows), n_rows, tol, skips)
        if not captions:
            skips.add("no usable captions", video.source, video.video_id)
            return None
        captions.sort(key=lambda c: (c.start, c.end))
        return {"video_id": video.video_id, "path": path, "n_rows": n_rows, "dim": dim, "captions": captions,
                **video.extras}

    def raw_captions(self, video: RawVideo, n_rows: int) -> list:
        """The video's (start, end, text[, step]) tuples; a loader may need T to make them."""
        return video.captions

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int) -> dict:
        if not -len(self) <= int(i) < len(self):  # IndexError also ends a plain ``for item in ds``
            raise IndexError(f"index {i} out of range for {len(self)} videos")
        for j in range(len(self.entries)):
            entry = self.entries[(i + j) % len(self.entries)]
            try:
                features = np.load(entry["path"], allow_pickle=False)
                if features.shape != (entry["n_rows"], self.feature_dim) or features.dtype.kind not in "fiu":
                    raise ValueError(f"shape {features.shape}, dtype {features.dtype}, "
                                     f"expected ({entry['n_rows']}, {self.feature_dim}) numeric")
                features = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
            except (OSError, ValueError, EOFError) as err:
                self._skips.add("unreadable at load time", entry["path"], str(err))
                warnings.warn(f"{type(self).__name__}: {entry['path']} unreadable ({err}); using the next item",
                              stacklevel=2)
                continue
            return self.make_item(entry, features)
        raise RuntimeError(f"{self.source}: no feature file is readable any more")

    def make_item(self, entry: dict, features: torch.Tensor) -> dict:
        caps = entry["captions"]
        return {"video_id": entry["video_id"], "features": features,
                "starts": torch.tensor([c.start for c in caps], dtype=torch.float32),
                "ends": torch.tensor([c.end for c in caps], dtype=torch.float32),
                "texts": [c.text for c in caps],
                **{k: (list(v) if isinstance(v, list) else v) for k, v in entry.items() if k not in _INTERNAL}}

    def all_texts(self) -> list[str]:
        """Every caption (and step text where there are steps): what a Tokenizer is fitted on."""
        captions = [c.text for e in self.entries for c in e["captions"]]
        return captions + [s for e in self.entries for s in e.get("steps", [])]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.source}, videos={len(self)}, skipped={dict(self.skipped)})"


_INTERNAL = {"video_id", "path", "n_rows", "dim", "captions"}  # entry keys that are not item keys


def feature_shape(path: Path, skips: SkipLog) -> tuple[int, int] | None:
    """(T, D) of a numeric feature file, read from its header only; None (and counted) if unusable."""
    if not path.is_file():
        skips.add("missing feature file", path)
        return None
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
        ok = isinstance(array, np.ndarray) and array.ndim == 2 and array.shape[0] >= 1 and array.dtype.kind in "fiu"
        detail = "" if ok else f"shape {getattr(array, 'shape', '?')}, dtype {getattr(array, 'dtype', '?')}"
    except (OSError, ValueError, EOFError) as err:
        ok, detail = False, str(err)
    if not ok:
        skips.add("unreadable feature file", path, detail)
        return None
    return int(array.shape[0]), int(array.shape[1])


def _check_captions(video: RawVideo, captions: list, n_rows: int, tol: float, skips: SkipLog) -> list[Caption]:
    kept = []
    for raw in captions:
        try:
            start, end = float(raw[0]), float(raw[1])
            text = raw[2]
            if not isinstance(text, str) or not (math.isfinite(start) and math.isfinite(end)):
                raise ValueError
        except (TypeError, ValueError, IndexError):
            skips.add("malformed captions", video.source, video.video_id)
            continue
        if start > end:
            skips.add("start > end", video.source, f"{video.video_id}: {start} > {end}")
        elif not words(text):  # ("...", "♪ ♪": no word to encode, all padding)
            skips.add("empty text", video.source, f"{video.video_id}: {text!r}")
        elif start < 0 or end > n_rows + tol or start >= n_rows:  # (a start at T covers no feature row)
            skips.add("times beyond features", video.source, f"{video.video_id}: [{start}, {end}] vs T = {n_rows}")
        else:
            kept.append(Caption(start, min(end, float(n_rows)), text.strip(), *raw[3:4]))
    return kept


def read_json(path: Path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError(f"{path}: not readable JSON ({err})") from err


def read_csv(path: Path, required: tuple[str, ...], skips: SkipLog) -> list[tuple[int, dict]]:
    """(line, row) of a CSV with a header holding ``required`` columns (ValueError naming the file if
    not). Rows with more fields than the header (an unquoted comma) are counted as "malformed row"."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # a byte-order mark (Excel's) is not a name
            reader = csv.DictReader(f)
            rows = [(reader.line_num, row) for row in reader]  # the line a row ends on
            columns = reader.fieldnames or []
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ValueError(f"{path}: not a readable CSV ({err})") from err
    missing = [c for c in required if c not in columns]
    if missing:
        raise ValueError(f"{path}: missing CSV columns {missing} (has {columns})")
    kept = []
    for line, row in rows:
        if None in row:  # DictReader puts the fields past the header's under the key None
            skips.add("malformed row", path, f"line {line}: {len(columns) + len(row[None])} fields, "
                                             f"the header has {len(columns)} (an unquoted comma?)")
        else:
            kept.append((line, row))
    return kept
