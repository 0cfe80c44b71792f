"""vtbench.io.atomic_write: all or nothing, with ordinary permissions."""
import os
import stat

import pytest

from vtbench.io import atomic_write


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "result.json"
    atomic_write(target, lambda f: f.write(b"old"))

    def crash(f):
        f.write(b"half of the new")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, crash)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_written_files_get_the_permissions_of_a_plain_open(tmp_path):
    mask = os.umask(0o022)
    try:
        path = atomic_write(tmp_path / "sub" / "file.bin", lambda f: f.write(b"x"))
    finally:
        os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
