"""Real-format loaders on small fixtures written on the fly, including every bad-input case."""
import json
import warnings

import numpy as np
import pytest
import torch

from vtbench.data import MSRVTT, CrossTask, HowTo100M, YouCook2, build_dataset


def feats(folder, vid, T, D=8):
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / f"{vid}.npy", np.random.default_rng(len(vid) + T).random((T, D), dtype=np.float32))


def no_warnings():
    ctx = warnings.catch_warnings()
    ctx.__enter__()
    warnings.simplefilter("error")
    return ctx


def check_item(item, T, D=8):
    K = len(item["texts"])
    assert isinstance(item["video_id"], str)
    assert item["features"].shape == (T, D) and item["features"].dtype == torch.float32
    assert item["starts"].shape == item["ends"].shape == (K,) and item["starts"].dtype == torch.float32
    assert (item["starts"] <= item["ends"]).all() and (item["starts"][1:] >= item["starts"][:-1]).all()


# -- HowTo100M ------------------------------------------------------------------------------

@pytest.fixture
def howto(tmp_path):
    feats(tmp_path / "features", "vid_a", 30)
    feats(tmp_path / "features", "vid_b", 20)
    captions = {"vid_a": {"start": [10, 0.5], "end": [14, 4], "text": ["crack the eggs", "Hi there"]},
                "vid_b": {"start": [1], "end": [5], "text": ["whisk"]}}
    return tmp_path, captions


def write_json(path, obj):
    path.write_text(json.dumps(obj))
    return path


def test_howto100m_one_json(howto):
    root, captions = howto
    ctx = no_warnings()
    ds = HowTo100M(write_json(root / "caps.json", captions), root / "features")
    ctx.__exit__(None, None, None)
    assert len(ds) == 2 and not ds.skipped
    a = ds[0]
    check_item(a, 30)
    assert a["video_id"] == "vid_a" and a["texts"] == ["Hi there", "crack the eggs"]  # sorted by start
    assert a["starts"].tolist() == [0.5, 10.0] and a["ends"].tolist() == [4.0, 14.0]
    assert ds.all_texts() == ["Hi there", "crack the eggs", "whisk"]
    assert [it["video_id"] for it in ds] == ["vid_a", "vid_b"] and ds[-1]["video_id"] == "vid_b"
    with pytest.raises(IndexError):
        ds[2]


def test_howto100m_folder_and_video_list(howto):
    root, captions = howto
    (root / "caps").mkdir()
    for vid, rec in captions.items():
        write_json(root / "caps" / f"{vid}.json", rec)
    (root / "train.csv").write_text("video_path,other\nvideos/vid_b.mp4,1\n")
    ds = HowTo100M(root / "caps", root / "features", video_list=root / "train.csv")
    assert [ds[i]["video_id"] for i in range(len(ds))] == ["vid_b"]
    assert len(HowTo100M(root / "caps", root / "features")) == 2


def test_howto100m_bad_entries_are_skipped_counted_and_named(howto):
    root, captions = howto
    features = root / "features"
    (features / "garbage.npy").write_bytes(b"not numpy")
    np.save(features / "flat.npy", np.zeros(5))
    np.save(features / "objects.npy", np.array([{"a": 1}, None]), allow_pickle=True)
    feats(features, "bad_caps", 10)
    captions.update({
        "no_features": {"start": [0], "end": [1], "text": ["x"]},
        "garbage": {"start": [0], "end": [1], "text": ["x"]},
        "flat": {"start": [0], "end": [1], "text": ["x"]},
        "objects": {"start": [0], "end": [1], "text": ["x"]},
        "bad_caps": {"start": [0, 1], "end": [1], "text": ["x"]},
    })
    captions["vid_a"] = {"start": [0, 5, 1, 2, -1, 0, 30.2, 4], "end": [3, 2, 30.8, 40, 1, 2, 30.6, 6],
                         "text": ["ok", "reversed", "slightly past the end is tolerated", "beyond", "negative", "  ",
                                  "starts past the end", "♪ ♪ ..."]}  # no word: all padding once encoded
    path = write_json(root / "caps.json", captions)
    with pytest.warns(UserWarning) as record:
        ds = HowTo100M(path, features)
    messages = " | ".join(str(w.message) for w in record)
    assert ds.skipped == {"missing feature file": 1, "unreadable feature file": 3, "malformed captions": 1,
                          "start > end": 1, "times beyond features": 3, "empty text": 2}
    assert "no_features.npy" in messages and "garbage.npy" in messages and "caps.json" in messages
    assert len(ds) == 2
    a = ds[0]
    assert a["texts"] == ["ok", "slightly past the end is tolerated"] and a["ends"].tolist() == [3.0, 30.0]


def test_howto100m_malformed_json_file_in_folder_is_skipped(howto):
    root, captions = howto
    (root / "caps").mkdir()
    write_json(root / "caps" / "vid_a.json", captions["vid_a"])
    (root / "caps" / "vid_b.json").write_text("{not json")
    with pytest.warns(UserWarning, match="vid_b.json"):
        ds = HowTo100M(root / "caps", root / "features")
    assert ds.skipped == {"malformed JSON": 1} and len(ds) == 1


def test_howto100m_nothing_usable_raises_naming_the_file(howto, tmp_path):
    root, _ = howto
    bad = root / "broken.json"
    bad.write_text("[1, 2")
    with pytest.raises(ValueError, match="broken.json"):
        HowTo100M(bad, root / "features")
    with pytest.raises(ValueError, match="list.json"):
        HowTo100M(write_json(root / "list.json", [1, 2]), root / "features")
    only_bad = write_json(root / "only_bad.json", {"vid_a": {"start": [3], "end": [1], "text": ["x"]}})
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="only_bad.json"):
        HowTo100M(only_bad, root / "features")
    (tmp_path / "empty_folder").mkdir()
    with pytest.raises(ValueError, match="empty_folder"):
        HowTo100M(tmp_path / "empty_folder", root / "features")


def test_feature_file_broken_after_construction_never_crashes_an_epoch(howto):
    root, captions = howto
    ds = HowTo100M(write_json(root / "caps.json", captions), root / "features")
    (root / "features" / "vid_a.npy").write_bytes(b"truncated")
    with pytest.warns(UserWarning, match="vid_a.npy"):
        item = ds[0]
    assert item["video_id"] == "vid_b"  # the next usable item stands in
    assert ds.skipped["unreadable at load time"] == 1
    (root / "features" / "vid_b.npy").unlink()
    with pytest.warns(UserWarning), pytest.raises(RuntimeError, match="caps.json"):
        ds[1]


def test_feature_widths_other_than_the_datasets_are_skipped_and_named(howto):
    root, captions = howto
    feats(root / "features", "wide", 25, D=16)
    feats(root / "features", "wide_unusable", 25, D=16)  # no usable caption: does not count towards D
    captions["wide"] = {"start": [1], "end": [5], "text": ["fold"]}
    captions["wide_unusable"] = {"start": [9], "end": [5], "text": ["reversed"]}
    with pytest.warns(UserWarning) as record:
        ds = HowTo100M(write_json(root / "caps.json", captions), root / "features")
    messages = " | ".join(str(w.message) for w in record)
    assert ds.skipped == {"start > end": 1, "no usable captions": 1, "feature width mismatch": 1}
    assert "wide.npy (D = 16, the dataset's D = 8)" in messages
    assert ds.feature_dim == 8 and [it["features"].shape[1] for it in ds] == [8, 8]
    for first, second, dim in (("vid_a", "wide", 8), ("wide", "vid_a", 16)):  # a tie: the first video's D
        tie = {first: captions[first], second: captions[second]}
        with pytest.warns(UserWarning, match=f"{second}.npy .D = {24 - dim}, the dataset's D = {dim}"):
            ds = HowTo100M(write_json(root / "tie.json", tie), root / "features")
        assert ds.feature_dim == dim and [it["video_id"] for it in ds] == [first]


def test_feature_width_changed_after_construction_is_unreadable_at_load_time(howto):
    root, captions = howto
    ds = HowTo100M(write_json(root / "caps.json", captions), root / "features")
    feats(root / "features", "vid_a", 30, D=16)  # same T, other D
    with pytest.warns(UserWarning, match=r"vid_a.npy unreadable \(shape \(30, 16\)"):
        item = ds[0]
    assert item["video_id"] == "vid_b" and ds.skipped["unreadable at load time"] == 1


# -- YouCook2 -------------------------------------------------------------------------------

def test_youcook2_csv(tmp_path):
    feats(tmp_path / "f", "yc1", 40)
    feats(tmp_path / "f", "yc2", 12)
    (tmp_path / "val.csv").write_text(
        "video_id,task,start,end,text\n"
        "yc1,101,20,30,add the salt\n"
        "yc1,101,2,8,cut the onion\n"
        "yc2,102,0,12,fry it\n"
        "yc2,102,five,12,bad number\n"
        "yc2,102,3,1,reversed\n"
        "yc1,101,4,9,\n"
        "yc2,102,1,80,beyond\n")
    with pytest.warns(UserWarning, match="val.csv"):
        ds = YouCook2(tmp_path / "val.csv", tmp_path / "f")
    assert ds.skipped == {"malformed row": 1, "start > end": 1, "empty text": 1, "times beyond features": 1}
    a, b = ds[0], ds[1]
    check_item(a, 40)
    assert a["texts"] == ["cut the onion", "add the salt"] and a["task"] == 101 and b["texts"] == ["fry it"]


def test_csv_rows_with_extra_fields_are_malformed_and_named(tmp_path):
    """An unquoted comma in the text adds a field: the row is skipped, not its text cut short."""
    feats(tmp_path / "f", "yc1", 40)
    (tmp_path / "val.csv").write_text(
        "video_id,task,start,end,text\n"
        "yc1,101,2,8,cut the onion\n"
        "\n"
        "yc1,101,10,14,cut the onion, then fry it\n"
        "yc1,101,20,30,\"add salt, pepper\"\n")
    with pytest.warns(UserWarning, match=r"'malformed row', first in .*val.csv \(line 4: 6 fields, the header has 5"):
        ds = YouCook2(tmp_path / "val.csv", tmp_path / "f")
    assert ds.skipped == {"malformed row": 1} and ds[0]["texts"] == ["cut the onion", "add salt, pepper"]
    (tmp_path / "msrvtt.csv").write_text("key,vid_key,video_id,sentence\nret0,msr0,yc1,a man, singing\n"
                                         "ret1,msr0,yc1,a woman\n")
    with pytest.warns(UserWarning, match=r"msrvtt.csv \(line 2: 5 fields"):
        ds = MSRVTT(tmp_path / "msrvtt.csv", tmp_path / "f")
    assert ds.skipped == {"malformed row": 1} and [it["texts"] for it in ds] == [["a woman"]]


def test_csv_with_a_byte_order_mark_reads(tmp_path):
    feats(tmp_path / "f", "yc1", 40)
    (tmp_path / "val.csv").write_bytes("video_id,task,start,end,text\nyc1,101,2,8,cut the onion\n".encode("utf-8-sig"))
    assert YouCook2(tmp_path / "val.csv", tmp_path / "f")[0]["texts"] == ["cut the onion"]


def test_youcook2_csv_rejects_a_subset(tmp_path):
    feats(tmp_path / "f", "yc1", 40)
    (tmp_path / "val.csv").write_text("video_id,task,start,end,text\nyc1,101,2,8,cut the onion\n")
    with pytest.raises(ValueError, match=r"val.csv: subset='no-such-subset' applies to the official JSON only"):
        YouCook2(tmp_path / "val.csv", tmp_path / "f", subset="no-such-subset")
    assert len(YouCook2(tmp_path / "val.csv", tmp_path / "f")) == 1
    assert len(build_dataset("youcook2", "test", csv_or_json=tmp_path / "val.csv", features=tmp_path / "f")) == 1


def test_youcook2_csv_missing_columns_or_unreadable_raises(tmp_path):
    (tmp_path / "cols.csv").write_text("vid,begin\nyc1,2\n")
    with pytest.raises(ValueError, match="cols.csv"):
        YouCook2(tmp_path / "cols.csv", tmp_path)
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match="binary.csv"):
        YouCook2(tmp_path / "binary.csv", tmp_path)
    with pytest.raises(ValueError, match="absent.csv"):
        YouCook2(tmp_path / "absent.csv", tmp_path)


def test_youcook2_official_json_with_subsets(tmp_path):
    feats(tmp_path / "f", "yc1", 40)
    feats(tmp_path / "f", "yc2", 40)
    database = {"database": {
        "yc1": {"subset": "validation", "recipe_type": "113",
                "annotations": [{"segment": [5, 9], "sentence": "boil water"}, {"sentence": "no segment"}]},
        "yc2": {"subset": "training", "annotations": [{"segment": [1, 3], "sentence": "wash"}]},
        "yc3": "not a record"}}
    path = write_json(tmp_path / "youcookii_annotations.json", database)
    with pytest.warns(UserWarning, match="youcookii_annotations.json"):
        ds = YouCook2(path, tmp_path / "f", subset="validation")
    assert len(ds) == 1 and ds[0]["texts"] == ["boil water"] and ds[0]["task"] == 113
    assert ds.skipped == {"malformed captions": 2}
    with pytest.warns(UserWarning):
        train = build_dataset("youcook2", "train", csv_or_json=path, features=tmp_path / "f")
    assert [train[i]["video_id"] for i in range(len(train))] == ["yc2"]
    with pytest.warns(UserWarning):  # no public test annotations: the test split is validation
        test = build_dataset("youcook2", "test", csv_or_json=path, features=tmp_path / "f")
    assert [test[i]["video_id"] for i in range(len(test))] == ["yc1"]
    with pytest.raises(ValueError, match=r"subset='valid' names no video; the file's subsets are \['training', 'validation'\]"):
        YouCook2(path, tmp_path / "f", subset="valid")
    with pytest.raises(ValueError, match="nodb.json"):
        YouCook2(write_json(tmp_path / "nodb.json", {"videos": {}}), tmp_path / "f")


# -- CrossTask ------------------------------------------------------------------------------

@pytest.fixture
def crosstask(tmp_path):
    root = tmp_path / "crosstask"
    (root / "annotations").mkdir(parents=True)
    (root / "tasks_primary.txt").write_text(
        "16815\nMake Jello Shots\nhttps://x\n3\npour water,pour jello powder,stir mixture\n\n"
        "23521\nMake Pancakes\nhttps://y\n2\nadd flour,pour milk\n\n"
        "99999\nBroken Block\nhttps://z\n4\nonly,three,steps\n")
    (root / "videos.csv").write_text(
        "16815,v1,https://youtube/v1\n"
        "23521,v2,https://youtube/v2\n"
        "16815,v3,https://youtube/v3\n"
        "77777,v4,https://youtube/v4\n"
        "just-one-field\n"
        "23521,v5,https://youtube/v5\n")
    (root / "annotations" / "16815_v1.csv").write_text("3,20.5,25\n1,2,6.5\n2,x,9\n5,1,2\n")
    (root / "annotations" / "23521_v2.csv").write_text("2,10,8\n1,1,4\n")
    (root / "annotations" / "16815_v3.csv").write_text("1,1,2\n")
    (root / "annotations" / "23521_v5.csv").write_text("1,1,2\n")
    feats(root / "features", "v1", 30)
    feats(root / "features", "v2", 15)
    feats(root / "features", "v5", 15)
    return root


def test_crosstask(crosstask):
    with pytest.warns(UserWarning) as record:
        ds = CrossTask(crosstask)
    messages = " | ".join(str(w.message) for w in record)
    assert dict(ds.skipped) == {"malformed task block": 1, "malformed row": 2, "unknown task": 1,
                                "step out of range": 1, "start > end": 1, "missing feature file": 1}
    assert "v3.npy" in messages and "16815_v1.csv" in messages and "tasks_primary.txt" in messages
    assert ds.task_ids == ["16815", "23521"] and ds.task_titles[1] == "Make Pancakes"
    assert [ds[i]["video_id"] for i in range(len(ds))] == ["v1", "v2", "v5"]
    v1 = ds[0]
    check_item(v1, 30)
    assert v1["task"] == 0 and v1["task_id"] == "16815"
    assert v1["steps"] == ["pour water", "pour jello powder", "stir mixture"]
    assert v1["segments"].tolist() == [[0.0, 2.0, 6.5], [2.0, 20.5, 25.0]]
    assert v1["texts"] == ["pour water", "stir mixture"]
    assert ds[1]["task"] == 1 and ds[1]["segments"].tolist() == [[0.0, 1.0, 4.0]]


def test_crosstask_missing_annotation_and_nothing_usable(crosstask):
    (crosstask / "annotations" / "23521_v5.csv").unlink()
    with pytest.warns(UserWarning) as record:
        ds = CrossTask(crosstask)
    assert ds.skipped["missing annotation file"] == 1
    assert any("23521_v5.csv" in str(w.message) for w in record)
    (crosstask / "tasks_primary.txt").write_text("garbage\n")
    with pytest.raises(ValueError, match="tasks_primary.txt.*malformed task block"):
        CrossTask(crosstask)
    (crosstask / "tasks_primary.txt").unlink()
    with pytest.raises(ValueError, match="tasks_primary.txt"):
        CrossTask(crosstask)


def test_crosstask_a_0_based_annotation_file_is_skipped_whole_not_relabelled(crosstask):
    # read as 1-based, "1,12,18" would label the second step's segment with the first step
    (crosstask / "annotations" / "16815_v3.csv").write_text("0,1,2\n1,3,5\n2,6,8\n")
    feats(crosstask / "features", "v3", 15)
    with pytest.warns(UserWarning) as record:
        ds = CrossTask(crosstask)
    assert ds.skipped["step below 1 (a 0-based file?): file skipped"] == 1
    assert any("16815_v3.csv (line 1: step 0)" in str(w.message) for w in record)
    assert "v3" not in [ds[i]["video_id"] for i in range(len(ds))]


def test_crosstask_blank_lines_of_spaces_and_runs_of_them_separate_task_blocks(crosstask):
    (crosstask / "tasks_primary.txt").write_text(
        "16815\r\nMake Jello Shots\r\nhttps://x\r\n3\r\npour water,pour jello powder,stir mixture\r\n  \r\n"
        "23521\nMake Pancakes\nhttps://y\n2\nadd flour,pour milk\n\n\n\n")
    (crosstask / "annotations" / "23521_v2.csv").write_text("1,1,4\n\n2,5,8\n")  # a blank line is not a row
    with pytest.warns(UserWarning):  # the fixture's own bad rows
        ds = CrossTask(crosstask, task_files="tasks_primary.txt")  # one file's name, not its letters
    assert ds.task_ids == ["16815", "23521"] and "malformed task block" not in ds.skipped
    assert ds[1]["segments"].tolist() == [[0.0, 1.0, 4.0], [1.0, 5.0, 8.0]]
    with pytest.raises(ValueError, match="task_files must name at least one task file"):
        CrossTask(crosstask, task_files=())


@pytest.mark.parametrize("tolerance", ["1", None, float("nan"), -1.0, True])
def test_time_tolerance_is_checked(howto, tolerance):
    root, captions = howto
    with pytest.raises(ValueError, match="time_tolerance must be a finite number of seconds >= 0"):
        HowTo100M(write_json(root / "caps.json", captions), root / "features", time_tolerance=tolerance)


def test_a_video_list_without_videos_says_so(howto):
    root, captions = howto
    (root / "empty.csv").write_text("video_path\n")
    with pytest.raises(ValueError, match="empty.csv: the video list names no video"):
        HowTo100M(write_json(root / "caps.json", captions), root / "features", video_list=root / "empty.csv")
    (root / "other.csv").write_text("path\nvid_a\n")
    with pytest.raises(ValueError, match=r"other.csv: needs a video_id or video_path column \(has \['path'\]\)"):
        HowTo100M(write_json(root / "caps.json", captions), root / "features", video_list=root / "other.csv")


# -- MSR-VTT --------------------------------------------------------------------------------

def test_msrvtt(tmp_path):
    feats(tmp_path / "f", "video7020", 12)
    feats(tmp_path / "f", "video7021", 9)
    (tmp_path / "f" / "video7022.npy").write_bytes(b"")
    (tmp_path / "test.csv").write_text(
        "key,vid_key,video_id,sentence\n"
        "ret0,msr7020,video7020,a man is singing\n"
        "ret1,msr7021,video7021,\n"
        "ret2,msr7022,video7022,a cat\n"
        "ret3,msr7023,video7023,a dog\n"
        "ret4,msr7024,,no video id\n"
        "ret5,msr7021,video7021,a woman cooks\n")
    with pytest.warns(UserWarning) as record:
        ds = MSRVTT(tmp_path / "test.csv", tmp_path / "f")
    messages = " | ".join(str(w.message) for w in record)
    assert "video7022.npy" in messages and "video7023.npy" in messages and "test.csv" in messages
    assert dict(ds.skipped) == {"empty text": 1, "no usable captions": 1, "unreadable feature file": 1,
                                "missing feature file": 1, "malformed row": 1}
    a, b = ds[0], ds[1]
    check_item(a, 12)
    assert a["texts"] == ["a man is singing"] and a["starts"].tolist() == [0.0] and a["ends"].tolist() == [12.0]
    assert a["key"] == "ret0" and b["ends"].tolist() == [9.0] and b["texts"] == ["a woman cooks"]
    (tmp_path / "cols.csv").write_text("key,caption\nret0,hi\n")
    with pytest.raises(ValueError, match="cols.csv"):
        MSRVTT(tmp_path / "cols.csv", tmp_path / "f")


def test_registry_builds_real_formats(howto):
    root, captions = howto
    ds = build_dataset("howto100m", "train", captions=write_json(root / "c.json", captions), features=root / "features")
    assert len(ds) == 2
