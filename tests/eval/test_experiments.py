"""End to end: a tiny trained run evaluated by ``python -m vtbench eval``, a smoke ``compare``, and
the untrained reference row being exactly the trainer's initialisation."""
import csv
import json
import math
import re

import matplotlib.pyplot as plt
import pytest
import torch

from vtbench.__main__ import main as vtbench_main
from vtbench.experiments import noise_overrides, untrained_run
from vtbench.experiments.compare import RunResult, format_cell, markdown_table, run_comparison, summarise
from vtbench.train import load_run, make_config, train

TINY = {"steps": 3, "batch_size": 4, "progress": False, "save_every": 3, "log_every": 1}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "infonce"
    return train(make_config("infonce", "quick", TINY, out=str(out)))


def test_eval_command_writes_eval_json(tiny_run, capsys):
    rc = vtbench_main(["eval", "--run", str(tiny_run), "--max-videos", "24", "--episodes", "10"])
    assert rc == 0
    result = json.loads((tiny_run / "eval.json").read_text())
    assert {"retrieval", "video_paragraph", "step_localisation", "few_shot", "zero_shot"} <= result.keys()
    assert result["run"]["method"] == "infonce" and result["run"]["step"] == 3
    assert result["meta"]["n_videos"] == 24 and result["meta"]["clip_len"] == 4
    assert 0 <= result["retrieval"]["R@10"] <= 1 and result["retrieval"]["MedR"] >= 1
    assert "retrieval/R@1" in capsys.readouterr().out
    (tiny_run / "eval.json").unlink()  # given its checkpoint file, the run's folder gets eval.json
    assert vtbench_main(["eval", "--run", str(tiny_run / "checkpoint.pt"), "--max-videos", "24", "--episodes", "10",
                         "--protocols", "retrieval"]) == 0
    assert json.loads((tiny_run / "eval.json").read_text())["run"]["train_seconds"] > 0
    assert f"wrote {tiny_run / 'eval.json'}" in capsys.readouterr().out


def test_the_command_line_lists_its_commands_and_fails_without_one(capsys):
    assert vtbench_main([]) == 2 and "commands:" in capsys.readouterr().out
    assert vtbench_main(["--help"]) == 0 and "compare" in capsys.readouterr().out
    assert vtbench_main(["fit"]) == 2 and "unknown command 'fit'" in capsys.readouterr().err


def test_compare_reports_a_diverged_run_with_status_1(tmp_path, capsys, monkeypatch):
    from vtbench.experiments import compare
    from vtbench.train import TrainingDiverged

    def diverge(*args, **kwargs):
        raise TrainingDiverged("loss is nan at step 2")

    monkeypatch.setattr(compare, "train", diverge)
    assert vtbench_main(["compare", "--methods", "infonce", "--seeds", "1", "--no-untrained",
                         "--runs", str(tmp_path / "runs"), "--out", str(tmp_path)]) == 1
    assert "error: loss is nan at step 2" in capsys.readouterr().err


def test_eval_command_bad_input(tmp_path, capsys):
    assert vtbench_main(["eval", "--run", str(tmp_path / "nothing")]) == 2
    assert "no run folder" in capsys.readouterr().err
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    assert vtbench_main(["eval", "--run", str(tmp_path / "broken")]) == 2


def test_eval_refuses_real_format_files_for_a_narrated_digits_run(tiny_run, capsys):
    assert vtbench_main(["eval", "--run", str(tiny_run), "--data-path", "/nonexistent/file.csv"]) == 2
    assert "data_path (--data-path, --features-path) name real-format files" in capsys.readouterr().err


def test_untrained_row_is_the_trainers_initialisation(tmp_path):
    config = make_config("vt-twins", "quick", {**TINY, "steps": 1, "lr": 0.0}, out=str(tmp_path / "run"), seed=3)
    trained = load_run(train(config)).model.state_dict()
    untrained = untrained_run(config).model.state_dict()
    assert trained.keys() == untrained.keys()
    assert all(torch.equal(trained[k], untrained[k]) for k in trained)


def test_compare_smoke_writes_the_tables(tmp_path):
    out, runs = tmp_path / "figures", tmp_path / "runs"
    argv = ["compare", "--seeds", "1", "--methods", "infonce,milnce", "--out", str(out), "--runs", str(runs),
            "--episodes", "5", "--max-videos", "24"] + [x for k, v in TINY.items() for x in ("--set", f"{k}={v}")]
    assert vtbench_main(argv) == 0
    rows = list(csv.DictReader(open(out / "comparison.csv")))
    assert {r["method"] for r in rows} == {"untrained", "infonce", "milnce"}
    assert any(r["metric"] == "step_localisation/recall" for r in rows)
    md = (out / "comparison.md").read_text()
    assert "| untrained |" in md and "| milnce |" in md and "python -m vtbench compare" in md
    runs_json = json.loads((out / "comparison.json").read_text())["runs"]
    assert len(runs_json) == 3
    assert (runs / "milnce-seed0" / "eval.json").is_file()
    # a second call reuses the finished runs (resume: no step trained again) and gives the same numbers
    trained = {p: p.stat().st_mtime_ns for p in runs.glob("*/checkpoint.pt")}
    assert vtbench_main(argv) == 0
    assert json.loads((out / "comparison.json").read_text())["runs"][1]["metrics"] == runs_json[1]["metrics"]
    assert {p: p.stat().st_mtime_ns for p in runs.glob("*/checkpoint.pt")} == trained and len(trained) == 2
    # ... but never continues a run made with another config
    assert vtbench_main([a if a != "steps=3" else "steps=4" for a in argv]) == 2


def test_compare_bad_input(tmp_path, capsys):
    assert vtbench_main(["compare", "--methods", "simclr", "--out", str(tmp_path)]) == 2
    assert "valid: infonce, milnce, vt-twins, tempclr, cali-nce" in capsys.readouterr().err
    assert vtbench_main(["compare", "--methods", "infonce", "--set", "gama=1", "--out", str(tmp_path)]) == 2
    assert "unknown config key(s) ['gama']" in capsys.readouterr().err
    runs = tmp_path / "runs"
    for option, message in ((["--episodes", "0"], "few_shot_episodes must be an int >= 1, got 0"),
                            (["--max-videos", "-1"], "max_videos must be an int >= 1")):
        assert vtbench_main(["compare", "--methods", "infonce", "--no-untrained", "--runs", str(runs),
                             "--out", str(tmp_path), *option]) == 2
        assert message in capsys.readouterr().err and not runs.exists()  # said before anything trained
    with pytest.raises(ValueError, match=r"seeds must be distinct.*got \[0, 0\]"):
        run_comparison(["infonce"], seeds=[0, 0], runs_dir=runs, out=None)
    assert vtbench_main(["compare", "--methods", "infonce", "--seeds", "0", "--runs", str(runs),
                         "--out", str(tmp_path)]) == 2
    assert "seeds must be at least 1 (seeds 0..N-1), got 0" in capsys.readouterr().err and not runs.exists()


def test_compare_checks_every_run_and_each_method_once_before_training(tmp_path, capsys):
    runs = tmp_path / "runs"
    common = ["compare", "--seeds", "1", "--no-untrained", "--runs", str(runs), "--out", str(tmp_path / "out")]
    for option, message in ((["--methods", "infonce", "tempclr", "--set", "n_pairs=9"], "tempclr needs n_clips >= n_pairs"),
                            (["--methods", "infonce", "vt-twins", "--set", "skip_cost=nan"], "skip_cost must be a finite"),
                            (["--methods", "infonce", "infonce"], "methods must be distinct")):
        assert vtbench_main([*common, *option]) == 2
        assert message in capsys.readouterr().err and not runs.exists()  # infonce did not train first
    (runs / "vt-twins-seed1").mkdir(parents=True)  # an earlier comparison's run, of another config
    (runs / "vt-twins-seed1" / "config.json").write_text(json.dumps({**make_config("vt-twins", "quick").to_dict(),
                                                                      "lr": 0.5}))
    assert vtbench_main([*common, "--seeds", "2", "--methods", "infonce", "vt-twins"]) == 2
    assert "lr: 0.5 there" in capsys.readouterr().err
    assert sorted(p.name for p in runs.iterdir()) == ["vt-twins-seed1"]


def test_eval_command_rejects_an_empty_protocol_list(tiny_run, capsys):
    assert vtbench_main(["eval", "--run", str(tiny_run), "--protocols", ","]) == 2
    assert "protocols must be a non-empty list of: retrieval" in capsys.readouterr().err


def test_the_best_trained_method_is_bold_lowest_for_medr_and_time_and_ties_are_not():
    rs = [RunResult("untrained", 0, {"retrieval/R@1": 0.9, "retrieval/MedR": 1.0}),
          RunResult("a", 0, {"retrieval/R@1": 0.2, "retrieval/MedR": 9.0}, train_seconds=5.0),
          RunResult("b", 0, {"retrieval/R@1": 0.3, "retrieval/MedR": 4.0}, train_seconds=5.0)]
    table = markdown_table(summarise(rs), ["untrained", "a", "b"], ["retrieval/R@1", "retrieval/MedR", "train_seconds"],
                           transpose=False).splitlines()
    assert table[2] == "| untrained | 90.0 | 1.0 | – |"  # never bold: not a trained method
    assert table[3] == "| a | 20.0 | 9.0 | 5.0 |"  # equal times: a tie, neither bold
    assert table[4] == "| b | **30.0** | **4.0** | 5.0 |"  # higher R@1, lower MedR


def test_the_header_counts_the_runs_training_time_apart_from_the_commands():
    from vtbench.experiments.compare import comparison_markdown

    rs = [RunResult("untrained", 0, {"retrieval/R@1": 0.1}),
          *(RunResult(m, s, {"retrieval/R@1": 0.2}, train_seconds=t) for m, s, t in [("a", 0, 5.0), ("a", 1, 7.0),
                                                                                    ("b", 0, 4.0), ("b", 1, 4.0)])]
    header = {"preset": "quick", "seeds": [0, 1], "methods": ["a", "b"], "overrides": {}, "seconds": 3.2,
              "command": "cmd"}  # every run reused: the command took 3 s, its runs trained for 20
    assert "(3 s; training its runs took 20 s, reused runs included; overrides: none)." in comparison_markdown(
        summarise(rs), header)


def test_summary_mean_and_sample_std():
    rs = [RunResult("a", s, {"retrieval/R@1": v}) for s, v in enumerate([0.1, 0.2, 0.3])]
    mean, std, n = summarise(rs)["a"]["retrieval/R@1"]
    assert (mean, n) == (pytest.approx(0.2), 3) and std == pytest.approx(0.1)
    assert format_cell("retrieval/R@1", mean, std) == "20.0 ± 10.0"
    assert format_cell("retrieval/MedR", 12.0, float("nan")) == "12.0"


def test_noise_levels():
    assert noise_overrides(0) == {"data_noise": 0.0, "data_preset": ""}
    assert noise_overrides(2.5)["data_noise"] == 2.5
    from vtbench.data import build_dataset
    from vtbench.train import make_config
    from vtbench.train.batches import dataset_kwargs
    clean = build_dataset("narrated-digits", "val", **dataset_kwargs(make_config("infonce", overrides=noise_overrides(0))))
    assert clean.config.shift_std == 0 and clean.config.filler_rate == 0
    with pytest.raises(ValueError, match=">= 0"):
        noise_overrides(-1)


def test_noise_ablation_rows(tmp_path):
    from vtbench.experiments import noise_ablation
    from vtbench.experiments.ablation import ablation_markdown

    rows = noise_ablation(levels=(0, 1), methods=["infonce"], seeds=1, overrides=TINY, runs_dir=tmp_path,
                          metrics=("retrieval/MedR", "zero_shot/accuracy"),
                          eval_options={"max_videos": 24, "few_shot_episodes": 5})
    assert [(r["noise"], r["method"], r["n_seeds"]) for r in rows] == [(0.0, "infonce", 1), (1.0, "infonce", 1)]
    assert all(r["retrieval/MedR"] >= 1 for r in rows)
    assert (tmp_path / "noise-0" / "infonce-seed0" / "eval.json").is_file()
    assert ablation_markdown(rows, ("retrieval/MedR",)).splitlines()[2].startswith("| 0 | infonce |")
    # n_seeds counts the runs, not the seeds of the last metric (0 where it is not measured)
    rows = noise_ablation(levels=(0,), methods=["infonce"], seeds=2, overrides=TINY, runs_dir=tmp_path,
                          metrics=("retrieval/MedR",), eval_options={"max_videos": 24, "protocols": ["retrieval"]})
    assert rows[0]["n_seeds"] == 2
    with pytest.raises(ValueError, match=r"metrics \['retrieval/R@1x'\] are not measured here"):
        noise_ablation(levels=(0,), methods=["infonce"], seeds=1, overrides=TINY, runs_dir=tmp_path,
                       metrics=("retrieval/R@1x",), eval_options={"max_videos": 24, "protocols": ["retrieval"]})


@pytest.mark.parametrize("levels, error, match", [
    ((0.0, 1.0, -1.0), ValueError, "noise level must be a finite number >= 0, got -1.0"),
    ("0,1", TypeError, "levels must be a sequence of numbers, got '0,1'"),
    ((1.0, 1.0000001), ValueError, "levels must be distinct"),
    ((), ValueError, "levels must be distinct"),
])
def test_noise_ablation_checks_every_level_before_training(tmp_path, levels, error, match):
    from vtbench.experiments import noise_ablation

    with pytest.raises(error, match=match):
        noise_ablation(levels=levels, methods=["infonce"], seeds=1, overrides=TINY, runs_dir=tmp_path)
    assert not any(tmp_path.iterdir())  # nothing trained


def _howto100m(folder, videos: int, seed: int):
    """A tiny HowTo100M-format set: captions.json and features/<id>.npy with random features."""
    import numpy as np

    (folder / "features").mkdir(parents=True)
    rng = np.random.default_rng(seed)
    captions = {}
    for v in range(videos):
        np.save(folder / "features" / f"vid{seed}_{v}.npy", rng.standard_normal((40, 16)).astype(np.float32))
        captions[f"vid{seed}_{v}"] = {"start": [0, 8, 16, 24], "end": [6, 14, 22, 30],
                                      "text": ["cut the onion", "fry it", "add salt", "serve hot"]}
    (folder / "captions.json").write_text(json.dumps(captions))
    return str(folder / "captions.json"), str(folder / "features")


def test_compare_on_real_format_data_says_whether_it_evaluated_held_out_files(tmp_path, capsys):
    captions, features = _howto100m(tmp_path / "train", 6, seed=0)
    held_captions, held_features = _howto100m(tmp_path / "held", 5, seed=1)
    common = ["--methods", "infonce", "--seeds", "1", "--no-untrained", "--episodes", "5",
              "--set", "data=howto100m", "--set", f"data_path={captions}", "--set", f"features_path={features}",
              *(x for kv in TINY.items() for x in ("--set", f"{kv[0]}={kv[1]}"))]
    assert vtbench_main(["compare", *common, "--out", str(tmp_path / "own"), "--runs", str(tmp_path / "runs")]) == 0
    assert f"evaluated on the runs' own training files ({captions})" in (tmp_path / "own" / "comparison.md").read_text()
    assert vtbench_main(["compare", *common, "--out", str(tmp_path / "held-out"), "--runs", str(tmp_path / "runs"),
                         "--data-path", held_captions, "--features-path", held_features]) == 0
    table = (tmp_path / "held-out" / "comparison.md").read_text()
    assert f"evaluated on {held_captions} (held out), features {held_features} (held out) (5 few-shot episodes)" in table
    result = json.loads((tmp_path / "runs" / "infonce-seed0" / "eval.json").read_text())
    assert result["meta"]["n_videos"] == 5  # the held-out set's, not the training set's 6
    capsys.readouterr()
    # narrated digits are evaluated on their own test split: held-out files are an error, before training
    assert vtbench_main(["compare", "--methods", "infonce", "--seeds", "1", "--runs", str(tmp_path / "digits"),
                         "--out", str(tmp_path / "digits"), "--data-path", held_captions]) == 2
    assert "narrated digits are evaluated on their own test split" in capsys.readouterr().err
    assert not (tmp_path / "digits").exists()
    # a held-out file that cannot be read fails before anything trains
    assert vtbench_main(["compare", *common, "--out", str(tmp_path / "typo"), "--runs", str(tmp_path / "typo-runs"),
                         "--data-path", str(tmp_path / "typo.json"), "--features-path", held_features]) == 2
    assert "typo.json" in capsys.readouterr().err and not (tmp_path / "typo-runs").exists()


def test_a_youcook2_json_is_evaluated_on_its_split_and_the_tables_say_so():
    from vtbench.experiments.compare import evaluated_on

    config = make_config("infonce", "quick", {"data": "youcook2", "data_path": "yc2.json", "features_path": "f"})
    # YouCook2's test annotations are not public: its test split is the validation subset
    assert evaluated_on(config, {}) == "the validation subset of yc2.json (the runs' own), features f (the runs' own)"
    assert (evaluated_on(config, {"split": "train", "data_path": "other.json", "features_path": "g"})
            == "the training subset of other.json (held out), features g (held out)")
    config = make_config("infonce", "quick", {"data": "youcook2", "data_path": "yc2.csv", "features_path": "f"})
    assert evaluated_on(config, {"data_path": "val.csv"}) == "val.csv (held out), features f (the runs' own)"
    assert evaluated_on(config, {"features_path": "g"}) == "yc2.csv (the runs' own), features g (held out)"


def test_ablate_retrains_at_each_value_of_a_key_and_writes_table_csv_and_figure(tmp_path, capsys):
    from vtbench.experiments import ablation

    args = ["ablate", "--key", "temperature", "--values", "0.5", "2", "--methods", "infonce", "milnce",
            "--metrics", "retrieval/MedR", "zero_shot/accuracy", "--runs", str(tmp_path / "runs"),
            "--out", str(tmp_path / "out"), "--episodes", "5", "--max-videos", "24",
            *(x for kv in TINY.items() for x in ("--set", f"{kv[0]}={kv[1]}"))]
    assert vtbench_main(args) == 0
    table = (tmp_path / "out" / "ablation.md").read_text()
    assert "# Ablation of temperature: quick config, 1 seed" in table
    assert "| temperature | method | retrieval/MedR | zero_shot/accuracy |" in table
    assert [line.split(" | ")[:2] for line in table.splitlines() if line.startswith("| 0.5") or line.startswith("| 2")] \
        == [["| 0.5", "infonce"], ["| 0.5", "milnce"], ["| 2", "infonce"], ["| 2", "milnce"]]
    rows = list(csv.DictReader((tmp_path / "out" / "ablation.csv").open()))
    assert len(rows) == 2 * 2 * 2 and {r["temperature"] for r in rows} == {"0.5", "2.0"}
    assert (tmp_path / "out" / "ablation.png").stat().st_size > 0
    saved = json.loads((tmp_path / "runs" / "temperature-2" / "milnce-seed0" / "config.json").read_text())
    assert saved["temperature"] == 2.0 and saved["steps"] == 3
    # the Python API: the rows as they were trained, under the key's name
    again = ablation("temperature", [0.5], ["infonce"], overrides=TINY, runs_dir=tmp_path / "runs",
                     metrics=("retrieval/MedR",), eval_options={"max_videos": 24, "protocols": ["retrieval"]})
    assert [(r["temperature"], r["method"], r["n_seeds"]) for r in again] == [(0.5, "infonce", 1)]


@pytest.mark.parametrize("args, match", [
    (["--key", "skip_cost", "--values", "0", "--methods", "infonce", "vt-twins"],
     r"config key 'skip_cost' does not apply to method\(s\) \['infonce'\]"),
    (["--key", "skipcost", "--values", "0", "--methods", "vt-twins"], r"unknown config key 'skipcost' .* valid: .*skip_cost"),
    (["--key", "seed", "--values", "1", "2", "--methods", "infonce"], r"'seed' cannot be ablated"),
    (["--key", "aligner", "--values", "soft_dtw", "otma", "--methods", "tempclr"], r"aligner must be one of"),
    (["--key", "temperature", "--values", "1", "0", "--methods", "infonce"],
     r"temperature must be a finite number > 0, got 0.0"),  # the loss's own check
    (["--key", "temperature", "--values", "1", "--methods", "infonce", "--metrics", "zero_shot/acc"],
     r"metrics \['zero_shot/acc'\] are not measured here"),
    (["--key", "data_noise", "--values", "0", "2", "--methods", "infonce", "--set", "data_preset=clean"],
     "data_preset=clean fixes the narration noise at 0"),
    (["--key", "temperature", "--values", "0.5", "hot", "--methods", "infonce"],
     "config key 'temperature' expects float, got 'hot'"),
    (["--key", "temperature", "--values", "0.5", "0.50", "--methods", "infonce"], "values must be distinct"),
    (["--key", "lr", "--values", "0.0012345671", "0.0012345674", "--methods", "infonce"],
     r"numbers to 6 significant digits\), got .* -> folders \['lr-0.00123457', 'lr-0.00123457'\]"),
    (["--key", "temperature", "--values", "1", "--methods", "infonce", "--set", "temperature=2"],
     "'temperature' is the key the ablation varies"),
    (["--key", "temperature", "--values", "1", "--methods", "infonce", "--seeds", "-1"],
     r"seeds must be at least 1 \(seeds 0..N-1\), got -1"),
])
def test_ablate_checks_the_key_and_every_value_before_training(tmp_path, capsys, args, match):
    assert vtbench_main(["ablate", *args, "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out")]) == 2
    assert re.search(match, capsys.readouterr().err)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "out").exists()


def test_ablate_refuses_a_runs_folder_of_other_configs_before_training_anything(tmp_path, capsys):
    common = ["ablate", "--key", "temperature", "--methods", "infonce", "--runs", str(tmp_path / "runs"),
              "--out", str(tmp_path / "out"), "--episodes", "5", "--max-videos", "24", "--metrics", "retrieval/MedR",
              *(x for kv in TINY.items() for x in ("--set", f"{kv[0]}={kv[1]}"))]
    assert vtbench_main([*common, "--values=2,-0.5e1"]) == 2  # commas separate values, exponents included
    assert "temperature must be a finite number > 0, got -5.0" in capsys.readouterr().err  # before training
    assert vtbench_main([*common, "--values", "2"]) == 0
    capsys.readouterr()
    assert vtbench_main([*common, "--values", "0.1", "2", "--set", "lr=0.01"]) == 2
    assert "holds a run with another config (lr: 0.002 there, 0.01 here)" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["temperature-2"]  # 0.1 never trained


def test_ablation_figures_put_ticks_at_the_values_and_draw_categories_as_points():
    from vtbench.viz.results import plot_ablation

    metric = "zero_shot/accuracy"
    rows = [{"lr": lr, "method": "infonce", metric: 0.5, f"{metric} std": math.nan} for lr in (1e-4, 1e-3, 1e-2)]
    ax = plot_ablation(rows, [metric], by="lr").axes[0]
    assert ax.get_xscale() == "log" and list(ax.get_xticks()) == [1e-4, 1e-3, 1e-2]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.0001", "0.001", "0.01"]
    rows = [{"aligner": a, "method": "tempclr", metric: 0.5, f"{metric} std": math.nan} for a in ("soft_dtw", "otam")]
    ax = plot_ablation(rows, [metric], by="aligner").axes[0]
    assert ax.containers[0].lines[0].get_linestyle() == "None"  # no line suggesting an order between settings
    plt.close("all")
