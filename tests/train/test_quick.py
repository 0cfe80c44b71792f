"""The quick config of every method trains on narrated digits and ends clearly better than the
untrained model on text-to-clip retrieval (val split). How long it takes is not a test's business
(machines are noisy): ``python -m vtbench.train.quickcheck`` prints each method's training time."""
from __future__ import annotations

import pytest

from vtbench.losses import LOSSES
from vtbench.train.quickcheck import check, main


@pytest.mark.slow
@pytest.mark.parametrize("method", list(LOSSES))
def test_quick_config_trains_and_retrieves_better(method, tmp_path):
    result = check(method, "quick", [], tmp_path, max_videos=120)
    before, after = result["before"], result["after"]
    assert after["MedR"] < before["MedR"] / 3, result  # 120 val videos: ~480 captions, ~48 of each digit
    assert after["R@10"] > before["R@10"] + 0.1, result
    if "same_text/R@1" in before:
        assert after["same_text/R@1"] > before["same_text/R@1"] + 0.3, result


def test_quickcheck_names_a_bad_method_or_key_before_training(capsys):
    assert main(["--methods", "infonce", "nope"]) == 2
    assert "unknown method 'nope'" in capsys.readouterr().err
    assert main(["--methods", "infonce", "--set", "colour=red"]) == 2
    assert "unknown config key(s) ['colour']" in capsys.readouterr().err
