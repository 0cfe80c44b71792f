"""Caches are atomic: an interrupted write leaves no cache, a corrupt cache is regenerated."""
import gc
import os
import time
import warnings

import numpy as np
import pytest
import torch

from vtbench.data import NarratedDigits, cache

SMALL = {"videos_per_task": 2}


def test_round_trip(tmp_path):
    path = cache.save_arrays(tmp_path / "c.npz", {"x": np.arange(6.0).reshape(2, 3)}, {"key": "k", "n": [1, 2]})
    arrays, meta = cache.load_arrays(path)
    assert np.array_equal(arrays["x"], np.arange(6.0).reshape(2, 3)) and meta == {"key": "k", "n": [1, 2]}
    assert list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize("error", [KeyboardInterrupt, OSError])
def test_interrupted_write_leaves_no_cache_and_no_temporary(tmp_path, monkeypatch, error):
    def savez_then_die(f, **arrays):
        f.write(b"PK\x03\x04 half of a zip file")
        raise error("interrupted")

    monkeypatch.setattr(cache.np, "savez", savez_then_die)
    with pytest.raises(error):
        cache.save_arrays(tmp_path / "c.npz", {"x": np.zeros(3)}, {})
    assert list(tmp_path.iterdir()) == []


def test_interruption_keeps_the_previous_cache_whole(tmp_path, monkeypatch):
    path = cache.save_arrays(tmp_path / "c.npz", {"x": np.ones(3)}, {"v": 1})
    monkeypatch.setattr(cache.os, "replace", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        cache.save_arrays(path, {"x": np.zeros(3)}, {"v": 2})
    arrays, meta = cache.load_arrays(path)
    assert meta == {"v": 1} and np.array_equal(arrays["x"], np.ones(3))
    assert list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty"])
def test_corrupt_file_reads_as_no_cache(tmp_path, damage):
    path = cache.save_arrays(tmp_path / "c.npz", {"x": np.random.default_rng(0).random(5000)}, {"k": 1})
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[len(data) // 2] ^= 0xFF
    elif damage == "garbage":
        data = bytearray(b"not a zip at all")
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cache.load_arrays(path) is None
        gc.collect()  # a file left open warns when it is collected
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


@pytest.mark.parametrize("header, offset, mask", [
    (b"PK\x01\x02", 8, 0x01),  # central directory: the 'encrypted' flag (zipfile raised RuntimeError)
    (b"PK\x01\x02", 6, 0xFF),  # central directory: 'version needed to extract' (NotImplementedError)
    (b"PK\x01\x02", 10, 0xFF),  # central directory: the compression method
])
def test_damaged_zip_header_reads_as_no_cache(tmp_path, header, offset, mask):
    path = cache.save_arrays(tmp_path / "c.npz", {"x": np.arange(5.0)}, {"k": 1})
    data = bytearray(path.read_bytes())
    data[data.find(header) + offset] ^= mask
    path.write_bytes(bytes(data))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cache.load_arrays(path) is None
        gc.collect()  # a file left open warns when it is collected
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


def test_any_flipped_header_byte_reads_as_no_cache_or_the_same_cache(tmp_path):
    """Every byte of the zip headers (local headers, central directory, end record), flipped two ways.

    zipfile reads the central directory, so some local-header damage is harmless; the names x and y
    are one bit apart, so a flip can make two members share a name."""
    path = cache.save_arrays(tmp_path / "c.npz", {"x": np.arange(5.0), "y": np.ones((2, 3), np.float32)}, {"k": [1]})
    original = path.read_bytes()
    expected = cache.load_arrays(path)
    local = [i for i in range(len(original)) if original.startswith(b"PK\x03\x04", i)]
    headers = [i for start in local for i in range(start, start + 30)] + list(range(original.find(b"PK\x01\x02"),
                                                                                    len(original)))
    for i in headers:
        for mask in (0x01, 0xFF):
            data = bytearray(original)
            data[i] ^= mask
            path.write_bytes(bytes(data))
            loaded = cache.load_arrays(path)  # never raises
            if loaded is not None:
                assert loaded[1] == expected[1] and loaded[0].keys() == expected[0].keys(), (i, mask)
                assert all(np.array_equal(loaded[0][k], expected[0][k]) for k in expected[0]), (i, mask)


def test_interrupt_while_reading_is_not_swallowed(tmp_path, monkeypatch):
    path = cache.save_arrays(tmp_path / "c.npz", {"x": np.arange(5.0)}, {"k": 1})
    monkeypatch.setattr(cache.np, "load", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        cache.load_arrays(path)


def test_dataset_cache_equals_fresh_generation(tmp_path):
    cached = NarratedDigits("val", cache_dir=tmp_path, **SMALL)
    files = list(tmp_path.glob("narrated-digits-val-*.npz"))
    assert len(files) == 1 and cached.cache_path == files[0]
    again = NarratedDigits("val", cache_dir=tmp_path, **SMALL)  # read back from the cache
    fresh = NarratedDigits("val", cache_dir=None, **SMALL)
    for i in range(len(fresh)):
        a, b, c = again[i], cached[i], fresh[i]
        assert torch.equal(a["features"], c["features"]) and torch.equal(b["features"], c["features"])
        assert a["texts"] == c["texts"] and torch.equal(a["segments"], c["segments"])
        assert torch.equal(a["narration_segment"], c["narration_segment"]) and a["clean_texts"] == c["clean_texts"]
    # another knob value is another cache file
    NarratedDigits("val", cache_dir=tmp_path, filler_rate=0.1, **SMALL)
    assert len(list(tmp_path.glob("narrated-digits-val-*.npz"))) == 2


def test_interrupted_generation_leaves_no_cache_then_recovers(tmp_path, monkeypatch):
    real_savez = np.savez

    def die(f, **arrays):
        f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(cache.np, "savez", die)
    with pytest.raises(KeyboardInterrupt):
        NarratedDigits("val", cache_dir=tmp_path, **SMALL)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(cache.np, "savez", real_savez)
    ds = NarratedDigits("val", cache_dir=tmp_path, **SMALL)
    assert len(ds) == 24 and cache.load_arrays(ds.cache_path) is not None


def test_corrupt_dataset_cache_is_detected_and_regenerated(tmp_path):
    ds = NarratedDigits("val", cache_dir=tmp_path, **SMALL)
    expected = ds[5]["features"].clone()
    data = bytearray(ds.cache_path.read_bytes())
    ds.cache_path.write_bytes(bytes(data[: len(data) - 100]))
    with pytest.warns(UserWarning, match="corrupt or stale cache"):
        again = NarratedDigits("val", cache_dir=tmp_path, **SMALL)
    assert torch.equal(again[5]["features"], expected)
    assert cache.load_arrays(ds.cache_path) is not None  # rewritten whole
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        NarratedDigits("val", cache_dir=tmp_path, **SMALL)  # and read quietly now


def test_unwritable_cache_dir_costs_only_the_cache(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    with pytest.warns(UserWarning, match="could not write the cache"):
        ds = NarratedDigits("val", cache_dir=blocker / "cache", **SMALL)
    assert len(ds) == 24


def test_only_old_temporaries_are_swept(tmp_path):
    old, fresh = tmp_path / "c.npz.abc.tmp", tmp_path / "c.npz.def.tmp"
    old.write_bytes(b"x")
    fresh.write_bytes(b"x")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    assert cache.sweep_temporaries(tmp_path, "c.npz") == 1
    assert not old.exists() and fresh.exists()


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("VTBENCH_CACHE_DIR", str(tmp_path))
    assert cache.default_cache_dir() == tmp_path
    monkeypatch.delenv("VTBENCH_CACHE_DIR")
    assert cache.default_cache_dir().parts[-2:] == ("data", "cache")
