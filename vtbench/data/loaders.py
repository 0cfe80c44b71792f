"""Real-format loaders: HowTo100M, YouCook2, CrossTask, MSR-VTT (shared/METHODS.md section 4).

Each reads precomputed features ``<features>/<video_id>.npy`` (T, D), one row per second, and
yields the common item (``video_id``, ``features``, ``starts``, ``ends``, ``texts``). Bad input is
skipped and counted in ``ds.skipped``; see :mod:`vtbench.data.captioned` for the reasons.

>>> ds = HowTo100M("captions.json", "features/")          # doctest: +SKIP
>>> ds[0]["features"].shape, ds[0]["texts"][:2], ds.skipped  # doctest: +SKIP
"""
from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import torch

from .captioned import CaptionedFeatures, RawVideo, SkipLog, read_csv, read_json


class HowTo100M(CaptionedFeatures):
    """Narrated videos: ``captions`` is one JSON ``{video_id: {"start": [..], "end": [..], "text":
    [..]}}`` or a folder of ``<video_id>.json`` holding the three lists; ``features`` the folder of
    ``<video_id>.npy``. ``video_list``: optional CSV restricting (and ordering) the videos, with a
    ``video_id`` column or VT-TWINS' ``video_path`` (video_id = the path's stem)."""

    def __init__(self, captions, features, *, video_list=None, time_tolerance: float = 1.0):
        skips = SkipLog(type(self).__name__)
        captions = Path(captions)
        records = _caption_folder(captions, skips) if captions.is_dir() else _caption_file(captions)
        ids = list(records) if video_list is None else _read_video_list(Path(video_list), skips)
        videos = []
        for vid in ids:
            if vid not in records:
                skips.add("no usable captions", video_list, f"{vid} has no captions")
                continue
            record, source = records[vid]
            if not (isinstance(record, dict) and all(isinstance(record.get(k), list) for k in ("start", "end", "text"))
                    and len(record["start"]) == len(record["end"]) == len(record["text"])):
                skips.add("malformed captions", source, vid)
                continue
            videos.append(RawVideo(vid, list(zip(record["start"], record["end"], record["text"])), source))
        super().__init__(videos, features, captions, skips, time_tolerance=time_tolerance)


def _caption_file(path: Path) -> dict:
    data = read_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object {{video_id: {{start, end, text}}}}")
    return {str(vid): (record, path) for vid, record in data.items()}


def _caption_folder(folder: Path, skips: SkipLog) -> dict:
    files = sorted(folder.glob("*.json"))
    if not files:
        raise ValueError(f"{folder}: no <video_id>.json caption files")
    records = {}
    for f in files:
        try:
            records[f.stem] = (read_json(f), f)
        except ValueError as err:
            skips.add("malformed JSON", f, str(err).split(": ", 1)[-1][:80])
    return records


def _read_video_list(path: Path, skips: SkipLog) -> list[str]:
    rows = [row for _, row in read_csv(path, (), skips)]
    if not rows:
        raise ValueError(f"{path}: the video list names no video")
    if "video_id" in rows[0]:
        ids = [r["video_id"] for r in rows if r.get("video_id")]
    elif "video_path" in rows[0]:
        ids = [Path(r["video_path"]).stem for r in rows if r.get("video_path")]
    else:
        raise ValueError(f"{path}: needs a video_id or video_path column (has {list(rows[0])})")
    if not ids:
        raise ValueError(f"{path}: the video list names no video")
    return ids


class YouCook2(CaptionedFeatures):
    """YouCook2 captions from the MIL-NCE/VT-TWINS CSV (video_id, task, start, end, text) or the
    official JSON (``["database"][vid]["annotations"][k]`` with ``segment`` and ``sentence``;
    ``subset`` keeps one of its subsets, e.g. "validation"; a CSV is one split, so ``subset`` must
    stay None). Items add ``task`` (the recipe type) when it is an integer."""

    def __init__(self, csv_or_json, features, *, subset: str | None = None, time_tolerance: float = 1.0):
        skips = SkipLog(type(self).__name__)
        path = Path(csv_or_json)
        if path.suffix.lower() == ".json":
            videos = _youcook2_json(path, subset, skips)
        elif subset is not None:
            raise ValueError(f"{path}: subset={subset!r} applies to the official JSON only; "
                             f"a CSV holds one split (pass subset=None)")
        else:
            videos = _youcook2_csv(path, skips)
        super().__init__(videos, features, path, skips, time_tolerance=time_tolerance)


def _task_extra(task) -> dict:
    try:
        return {"task": int(task)}
    except (TypeError, ValueError):
        return {}


def _youcook2_csv(path: Path, skips: SkipLog) -> list[RawVideo]:
    videos: dict[str, RawVideo] = {}
    for line, row in read_csv(path, ("video_id", "start", "end", "text"), skips):
        try:
            vid, start, end = row["video_id"].strip(), float(row["start"]), float(row["end"])
            text = row["text"] if row["text"] is not None else ""
        except (AttributeError, TypeError, ValueError):
            skips.add("malformed row", path, f"line {line}")
            continue
        if not vid:
            skips.add("malformed row", path, f"line {line}: no video_id")
            continue
        video = videos.setdefault(vid, RawVideo(vid, [], path, _task_extra(row.get("task"))))
        video.captions.append((start, end, text))
    return list(videos.values())


def _youcook2_json(path: Path, subset: str | None, skips: SkipLog) -> list[RawVideo]:
    data = read_json(path)
    database = data.get("database") if isinstance(data, dict) else None
    if not isinstance(database, dict):
        raise ValueError(f"{path}: expected {{\"database\": {{video_id: {{\"annotations\": [...]}}}}}}")
    present = sorted({str(r.get("subset")) for r in database.values() if isinstance(r, dict) and "subset" in r})
    if subset is not None and subset not in present:
        raise ValueError(f"{path}: subset={subset!r} names no video; the file's subsets are {present}")
    videos = []
    for vid, record in database.items():
        if not isinstance(record, dict) or not isinstance(record.get("annotations"), list):
            skips.add("malformed captions", path, vid)
            continue
        if subset is not None and record.get("subset") != subset:
            continue
        captions = []
        for ann in record["annotations"]:
            segment = ann.get("segment") if isinstance(ann, dict) else None
            if isinstance(segment, list) and len(segment) == 2:
                captions.append((segment[0], segment[1], ann.get("sentence")))
            else:
                captions.append((None, None, None))  # counted as malformed by the common checks
        videos.append(RawVideo(str(vid), captions, path, _task_extra(record.get("recipe_type"))))
    return videos


class CrossTask(CaptionedFeatures):
    """CrossTask under ``root``: ``videos.csv`` (lines task,vid,url), the task files (blocks of id /
    title / url / n_steps / comma-separated steps), ``annotations/<task>_<vid>.csv`` (lines
    step(1-based),start,end) and ``features/<vid>.npy``.

    Items add ``task`` (index into ``ds.task_ids``), ``task_id`` (CrossTask's id), ``steps`` (the
    task's ordered step texts) and ``segments`` (S, 3) rows (step from 0, start, end). CrossTask
    ships no narration in this format, so ``starts/ends/texts`` are the annotated segments with
    their step texts."""

    def __init__(self, root, *, features=None, task_files=("tasks_primary.txt",), time_tolerance: float = 1.0):
        skips = SkipLog(type(self).__name__)
        root = Path(root)
        if isinstance(task_files, (str, os.PathLike)):
            task_files = (task_files,)
        task_files = tuple(task_files)
        if not task_files:
            raise ValueError("task_files must name at least one task file (e.g. tasks_primary.txt)")
        tasks: dict[str, tuple[str, list[str]]] = {}
        for name in task_files:
            tasks.update(_read_tasks(root / name, skips))
        if not tasks:
            raise ValueError(f"{root / task_files[0]}: no usable task block ({skips.summary()})")
        self.task_ids = list(tasks)
        self.task_titles = [tasks[t][0] for t in self.task_ids]
        self.task_steps = [tasks[t][1] for t in self.task_ids]
        videos = _crosstask_videos(root, tasks, self.task_ids, skips)
        super().__init__(videos, root / "features" if features is None else features, root / "videos.csv",
                         skips, time_tolerance=time_tolerance)

    def make_item(self, entry: dict, features: torch.Tensor) -> dict:
        item = super().make_item(entry, features)
        item["segments"] = torch.tensor([[c.step, c.start, c.end] for c in entry["captions"]],
                                        dtype=torch.float32).reshape(-1, 3)
        return item


def _read_tasks(path: Path, skips: SkipLog) -> dict[str, tuple[str, list[str]]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a readable task file ({err})") from err
    # blocks end at a blank line: one or more lines of nothing but whitespace
    blocks = [b for b in re.split(r"\n(?:[ \t\r]*\n)+", text.replace("\r\n", "\n")) if b.strip()]
    tasks = {}
    for k, block in enumerate(blocks):
        lines = [line.strip() for line in block.strip().splitlines()]
        try:
            task_id, title, _url, n_steps, steps = lines
            steps = [s.strip() for s in steps.split(",")]
            if int(n_steps) != len(steps) or not task_id or not all(steps):
                raise ValueError
        except ValueError:
            skips.add("malformed task block", path, f"block {k + 1}")
            continue
        tasks[task_id] = (title, steps)
    return tasks


def _crosstask_videos(root: Path, tasks: dict, task_ids: list[str], skips: SkipLog) -> list[RawVideo]:
    listing = root / "videos.csv"
    try:
        with open(listing, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ValueError(f"{listing}: not a readable CSV ({err})") from err
    videos = []
    for line, row in enumerate(rows, start=1):
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            skips.add("malformed row", listing, f"line {line}")
            continue
        task, vid = row[0].strip(), row[1].strip()
        if task not in tasks:
            skips.add("unknown task", listing, f"line {line}: task {task}")
            continue
        annotation = root / "annotations" / f"{task}_{vid}.csv"
        if not annotation.is_file():
            skips.add("missing annotation file", annotation)
            continue
        steps = tasks[task][1]
        extras = {"task": task_ids.index(task), "task_id": task, "steps": list(steps)}
        videos.append(RawVideo(vid, _read_annotation(annotation, steps, skips), annotation, extras))
    return videos


def _read_annotation(path: Path, steps: list[str], skips: SkipLog) -> list[tuple]:
    captions = []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        skips.add("malformed row", path, str(err))
        return captions
    for line, row in enumerate(rows, start=1):
        if not any(field.strip() for field in row):
            continue  # a blank line
        try:
            step, start, end = int(row[0]), float(row[1]), float(row[2])
        except (IndexError, ValueError):
            skips.add("malformed row", path, f"line {line}")
            continue
        if step < 1:  # CrossTask counts steps from 1: the file's other steps would each name the one before
            skips.add("step below 1 (a 0-based file?): file skipped", path, f"line {line}: step {step}")
            return []
        if step > len(steps):
            skips.add("step out of range", path, f"line {line}: step {step} of {len(steps)}")
            continue
        captions.append((start, end, steps[step - 1], step - 1))
    return captions


class MSRVTT(CaptionedFeatures):
    """MSR-VTT retrieval CSV (key, vid_key, video_id, sentence): one item per row, its one caption
    spanning the whole video (starts = [0], ends = [T]). Items add ``key`` when the CSV has it."""

    def __init__(self, csv, features):
        skips = SkipLog(type(self).__name__)
        path = Path(csv)
        videos = []
        for line, row in read_csv(path, ("video_id", "sentence"), skips):
            vid = (row.get("video_id") or "").strip()
            if not vid:
                skips.add("malformed row", path, f"line {line}: no video_id")
                continue
            extras = {"key": row["key"]} if row.get("key") else {}
            videos.append(RawVideo(vid, [(0.0, None, row.get("sentence") or "")], path, extras))
        super().__init__(videos, features, path, skips, time_tolerance=0.0)

    def raw_captions(self, video: RawVideo, n_rows: int) -> list:
        return [(0.0, float(n_rows), text) for _, _, text in video.captions]
