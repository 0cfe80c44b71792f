import pytest

from vtbench.train import make_config


@pytest.fixture
def tiny(tmp_path):
    """A few steps of a method on narrated digits, quick preset, small batches."""
    def config(method="infonce", **fields):
        values = {"steps": 6, "batch_size": 4, "save_every": 3, "log_every": 2, "progress": False,
                  "out": str(tmp_path / method), **fields}
        return make_config(method, "quick", **values)
    return config
