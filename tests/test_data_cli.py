"""The `oltr-data` command on files generated in temporary folders."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

from oltr_nb.manifests import DATASETS, MANIFEST_DIR, load_manifest
from oltr_nb.data_cli import main
from oltr_nb.sun_lt import prepare_sun_lt, ranked_sizes


def run(capsys, *argv):
    "Exit status, parsed JSON stdout (or None) and stderr of `oltr-data argv`."
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    try: res = json.loads(out)
    except json.JSONDecodeError: res = None
    return code, res, err


def write_list(path, rows):
    Path(path).write_text("".join(f"{p} {l}\n" for p, l in rows))
    return path


def make_copy(root, classes=("abbey", "bamboo", "canal"), per_class=(4, 3, 2)):
    "Tiny JPEGs in root/train/<class>/<k>.jpg; returns the (path, label) rows."
    rows = []
    for c, (name, n) in enumerate(zip(classes, per_class)):
        (root / "train" / name).mkdir(parents=True, exist_ok=True)
        for k in range(n):
            Image.new("RGB", (8, 8), (60 * c, 20 * k, 100)).save(root / "train" / name / f"{k:03d}.jpg")
            rows.append((f"train/{name}/{k:03d}.jpg", c))
    return rows


@pytest.fixture
def hand_counted(tmp_path):
    "150, 100, 20 and 5 images in classes 0..3 plus 2 open-set lines: 277 lines."
    sizes = {0: 150, 1: 100, 2: 20, 3: 5}
    rows = [(f"train/c{c}/{k:04d}.jpg", c) for c, n in sizes.items() for k in range(n)]
    return write_list(tmp_path / "hand.txt", rows + [("open/a.jpg", -1), ("open/b.jpg", -1)])


def test_stats_matches_hand_counts(capsys, hand_counted):
    code, res, _ = run(capsys, "stats", hand_counted)
    assert code == 0
    assert (res["num_images"], res["num_classes"], res["open_images"]) == (277, 4, 2)
    assert (res["max_per_class"], res["min_per_class"], res["median_per_class"]) == (150, 5, 60.0)
    assert (res["many"], res["medium"], res["few"]) == (1, 2, 1)  # paper rule: 100 is medium, 20 is medium
    code, res, _ = run(capsys, "stats", hand_counted, "--rule", "code")
    assert (res["many"], res["medium"], res["few"]) == (2, 0, 2)  # code rule: 100 is many, 20 is few
    assert len(res["content_digest"]) == len(res["counts_digest"]) == 64


def test_stats_content_digest_ignores_layout(capsys, tmp_path, hand_counted):
    rows = [l.split() for l in hand_counted.read_text().splitlines()]
    other = write_list(tmp_path / "d256.txt", [(p.replace("train/", "data_256/c/"), l) for p, l in reversed(rows)])
    _, a, _ = run(capsys, "stats", hand_counted)
    _, b, _ = run(capsys, "stats", other)
    assert a["content_digest"] == b["content_digest"] and a["counts_digest"] == b["counts_digest"]
    assert a["sha256"] != b["sha256"]
    relabelled = write_list(tmp_path / "relab.txt", [(p, 3 if l == "2" else l) for p, l in rows])
    _, c, _ = run(capsys, "stats", relabelled)
    assert c["content_digest"] != a["content_digest"]


def test_stats_missing_file_is_a_clear_error(capsys, tmp_path):
    code, res, err = run(capsys, "stats", tmp_path / "nope.txt")
    assert code == 2 and res is None and "split file not found" in err


@pytest.fixture
def tiny_copy(tmp_path):
    "A 3-class copy with its split file and a manifest that describes it."
    root = tmp_path / "images"
    rows = make_copy(root)
    splits = tmp_path / "splits"; splits.mkdir()
    write_list(splits / "tiny_train.txt", rows)
    manifest = {"name": "tiny", "num_classes": 3, "source": {"kind": "image_folder"}, "thresholds": {"many": 3, "few": 3},
                "splits": {"train": {"file": "tiny_train.txt", "lines": 9, "num_classes": 3, "max_per_class": 4,
                                     "min_per_class": 2, "groups": {"paper": {"many": 1, "medium": 1, "few": 1}}}}}
    mpath = tmp_path / "tiny.yaml"
    mpath.write_text(yaml.safe_dump(manifest))
    return root, splits, mpath, rows


def snapshot(*dirs):
    return sorted((str(p), p.stat().st_mtime_ns, p.stat().st_size) for d in dirs for p in Path(d).rglob("*"))


def test_verify_good_copy(capsys, tiny_copy):
    root, splits, mpath, _ = tiny_copy
    code, res, err = run(capsys, "verify", "tiny", "--splits", splits, "--images", root, "--manifest", mpath, "--no-progress")
    assert code == 0 and res["ok"] and res["problems"] == []
    assert "checked by counts only" in err


def test_verify_reports_every_problem_with_file_and_line(capsys, tiny_copy):
    root, splits, mpath, rows = tiny_copy
    (root / "train" / "abbey" / "001.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")   # line 2: corrupted
    (root / "train" / "abbey" / "002.jpg").write_bytes(b"")                               # line 3: empty
    data = (root / "train" / "bamboo" / "000.jpg").read_bytes()
    (root / "train" / "bamboo" / "000.jpg").write_bytes(data[: len(data) // 2])            # line 5: truncated JPEG
    (root / "train" / "bamboo" / "001.jpg").unlink()                                      # line 6: missing
    lines = [f"{p} {l}" for p, l in rows]
    lines[7] = "train/canal/000.jpg 7"                                                    # line 8: wrong label
    (splits / "tiny_train.txt").write_text("\n".join(lines[:8]) + "\ntrain/canal/00")     # line 9: truncated line
    before = snapshot(root, splits)
    code, res, err = run(capsys, "verify", "tiny", "--splits", splits, "--images", root, "--manifest", mpath, "--no-progress")
    assert code == 1 and not res["ok"]
    probs = res["problems"]
    def at(line, text): return any(f"tiny_train.txt:{line}: " in p and text in p for p in probs)
    assert at(2, "cannot decode") and at(3, "empty") and at(5, "cannot decode") and at(6, "not found")
    assert at(8, "label 7 out of range") and at(9, "truncated last line")
    assert all(f"problem: {p}" in err for p in probs)
    assert snapshot(root, splits) == before                                                # verify changes nothing


def test_verify_finds_repeats_and_leaks_across_split_files(capsys, tiny_copy):
    "A line repeated in train and a test line naming a training image (in another layout) are both reported, with file and line."
    root, splits, mpath, rows = tiny_copy
    lines = [f"{p} {l}" for p, l in rows]
    (splits / "tiny_train.txt").write_text("\n".join(lines + [lines[0]]) + "\n")
    (splits / "tiny_test.txt").write_text(f"data_256/a/{rows[4][0].removeprefix('train/')} {rows[4][1]}\n")
    m = yaml.safe_load(mpath.read_text())
    m["splits"]["train"]["lines"] = 10
    m["splits"]["test"] = {"file": "tiny_test.txt"}
    mpath.write_text(yaml.safe_dump(m, sort_keys=False))  # train first, as a run reads them
    code, res, _ = run(capsys, "verify", "tiny", "--splits", splits, "--images", root, "--manifest", mpath, "--no-progress")
    assert code == 1
    assert f"{splits / 'tiny_train.txt'}:10: image '{rows[0][0]}' is listed twice (first on line 1)" in res["problems"]
    assert f"{splits / 'tiny_test.txt'}:1: image 'data_256/a/{rows[4][0].removeprefix('train/')}' is also in the train split " \
           f"({splits / 'tiny_train.txt'}:5)" in res["problems"]


def test_verify_sample_checks_fewer_images(capsys, tiny_copy):
    root, splits, mpath, _ = tiny_copy
    (root / "train" / "abbey" / "000.jpg").unlink()
    found = []
    for seed in range(6):
        code, res, _ = run(capsys, "verify", "tiny", "--splits", splits, "--images", root, "--manifest", mpath,
                           "--sample", 3, "--seed", seed, "--no-progress")
        found.append(len(res["problems"]))
    assert set(found) <= {0, 1} and 0 in found and 1 in found   # 3 of 9 images: the missing one is sometimes drawn


def test_verify_places_lt_val_counts(capsys, tmp_path):
    "A generated Places_LT_val.txt with 365 x 20 lines passes the count checks; the other lists are reported missing."
    write_list(tmp_path / "Places_LT_val.txt", [(f"train/class{c:03d}/{k:08d}.jpg", c) for c in range(365) for k in range(20)])
    code, res, _ = run(capsys, "verify", "places_lt", "--splits", tmp_path, "--no-progress")
    assert code == 1
    assert not any("Places_LT_val.txt:" in p or p.startswith(f"{tmp_path / 'Places_LT_val.txt'}: ") for p in res["problems"])
    assert sorted(Path(p.split(": ")[0]).name for p in res["problems"]) == \
        ["Places_LT_open.txt", "Places_LT_test.txt", "Places_LT_train.txt"]
    write_list(tmp_path / "Places_LT_val.txt", [(f"train/class{c:03d}/{k:08d}.jpg", c) for c in range(365) for k in range(19)])
    _, res, _ = run(capsys, "verify", "places_lt", "--splits", tmp_path, "--no-progress")
    assert any("7,300" in p or "6935 lines, manifest says 7300" in p for p in res["problems"])
    assert any("per-class counts" in p for p in res["problems"])


def test_verify_unknown_dataset(capsys, tmp_path):
    code, _, err = run(capsys, "verify", "mnist_lt", "--splits", tmp_path)
    assert code == 2 and "dataset='mnist_lt' is not allowed; choose one of: " + ", ".join(DATASETS) in err


def test_make_lt_exp_and_pareto(capsys, tmp_path):
    bal = write_list(tmp_path / "balanced.txt", [(f"train/c{c}/{k}.jpg", c) for c in range(10) for k in range(50)])
    code, res, _ = run(capsys, "make-lt", bal, "--profile", "exp", "--rho", 10, "--seed", 1, "--out", tmp_path / "exp.txt")
    assert code == 0
    labels = [int(l.split()[1]) for l in (tmp_path / "exp.txt").read_text().splitlines()]
    counts = [labels.count(c) for c in range(10)]
    assert counts[:2] == [50, 38] and counts[5] == 13        # floor(50 * 10**(-1/9)) = 38, floor(50 * 10**(-5/9)) = 13
    entry = yaml.safe_load((tmp_path / "exp.yaml").read_text())["exp"]
    assert entry["lines"] == len(labels) == res["lines"] and entry["profile"]["rho"] == 10
    for name in ("p1", "p2"):
        run(capsys, "make-lt", bal, "--profile", "pareto", "--alpha", 6, "--seed", 7, "--out", tmp_path / f"{name}.txt")
    assert (tmp_path / "p1.txt").read_text() == (tmp_path / "p2.txt").read_text()
    _, st, _ = run(capsys, "stats", tmp_path / "p1.txt")
    assert st["max_per_class"] == 50 and st["min_per_class"] >= 5
    run(capsys, "make-lt", bal, "--profile", "pareto", "--seed", 8, "--out", tmp_path / "p3.txt")
    assert (tmp_path / "p3.txt").read_text() != (tmp_path / "p1.txt").read_text()
    code, _, err = run(capsys, "make-lt", bal, "--profile", "exp", "--out", tmp_path / "x.yaml")
    assert code == 2 and "cannot end in .yaml" in err


@pytest.mark.parametrize("sub", ["stats", "verify", "make-lt", "prepare"])
def test_help_of_each_subcommand(capsys, sub):
    with pytest.raises(SystemExit) as e: main([sub, "--help"])
    assert e.value.code == 0
    assert f"usage: oltr-data {sub}" in capsys.readouterr().out


def test_prepare_missing_source_is_a_clear_error(capsys, tmp_path):
    code, _, err = run(capsys, "prepare", "fashion_mnist_lt", "--source", tmp_path)
    assert code == 2 and "train-images-idx3-ubyte not found" in err and "dataset-fashion-mnist" in err


@pytest.mark.slow
def test_prepare_fashion_mnist_lt(capsys, tmp_path):
    source = Path("/usr/share/datasets/fashion-mnist")
    if not (source / "train-images-idx3-ubyte.gz").exists(): pytest.skip("Debian package dataset-fashion-mnist not installed")
    code, res, _ = run(capsys, "prepare", "fashion_mnist_lt", "--out", tmp_path)
    assert code == 0 and res["problems"] == []
    assert res["sizes"] == {"train": 12171, "val": 800, "test": 8000, "open": 2000}
    assert len((tmp_path / "fashion_mnist_lt_open.txt").read_text().splitlines()) == 2000


def test_prepare_sun_lt_checks_the_copy_before_writing(capsys, tmp_path):
    "A SUN-397 copy of 2 classes is not SUN-397: every mismatch with the published facts is named, nothing is written."
    for c in ("a/abbey", "b/bedroom"):
        (tmp_path / "SUN397" / c).mkdir(parents=True)
        for k in range(3): Image.new("RGB", (8, 8), (40 * k, 90, 200)).save(tmp_path / "SUN397" / c / f"sun_{k}.jpg")
    (tmp_path / "Partitions").mkdir()
    (tmp_path / "Partitions" / "ClassName.txt").write_text("/a/abbey\n/b/bedroom\n")
    (tmp_path / "Partitions" / "Testing_01.txt").write_text("/a/abbey/sun_0.jpg\n/b/bedroom/sun_9.jpg\n")
    code, res, _ = run(capsys, "prepare", "sun_lt", "--source", tmp_path)
    assert code == 1 and not res["ok"] and "written" not in res
    assert any("ClassName.txt: 2 classes, SUN-397 has 397" in p for p in res["problems"])
    assert any("Training_01.txt" in p and "not found" in p for p in res["problems"])
    assert any("Testing_01.txt: 1 to 1 images per class, SUN-397 lists 50" in p for p in res["problems"])
    assert any("Testing_01.txt:2: image 'b/bedroom/sun_9.jpg' not found" in p for p in res["problems"])
    assert any("6 images, SUN-397 has 108754" in p for p in res["problems"])
    assert not (tmp_path / "SUN_LT_train.txt").exists()


def sun_copy(root, per_class: dict):
    "A SUN-397-like copy: per_class[c] JPEGs in SUN397/<c>/, one partition with image 0 of each class for test and 1 for training."
    for c, n in per_class.items():
        (root / "SUN397" / c).mkdir(parents=True)
        for k in range(n): Image.new("RGB", (8, 8), (30 * k, 90, 200)).save(root / "SUN397" / c / f"sun_{k:02d}.jpg")
    (root / "Partitions").mkdir()
    (root / "Partitions" / "ClassName.txt").write_text("".join(f"/{c}\n" for c in per_class))
    for kind, k in (("Testing", 0), ("Training", 1)):
        (root / "Partitions" / f"{kind}_01.txt").write_text("".join(f"/{c}/sun_{k:02d}.jpg\n" for c in per_class))
    return root


def tiny_sun(images: int, rho: float):
    "The shipped sun_lt manifest with the facts of a 3-class copy of one partition, 1 val image per class, the exp profile."
    sm = load_manifest("sun_lt")
    return sm.updated(source={**sm.raw["source"], "parent": {"classes": 3, "images": images, "partitions": 1,
                                                            "per_class_per_partition": {"train": 1, "test": 1}}},
                      split={**sm.raw["split"], "val_per_class": 1, "profile": {"kind": "exp", "rho": rho, "seed": 0}},
                      splits={k: {"file": v.file} for k, v in sm.splits.items()})


def test_ranked_sizes_by_hand():
    "Classes with 30, 80, 10, 50 images, sizes 60, 55, 20, 12: 80 takes 60, 50 takes 55 (capped to 50), 30 takes 20, 10 takes 12 (capped)."
    sizes, report = ranked_sizes([30, 80, 10, 50], [12, 55, 60, 20])
    assert sizes.tolist() == [20, 60, 10, 50]
    assert report == dict(classes=4, capped=2, intended=dict(largest=60, smallest=12, total=147),
                          realised=dict(largest=60, smallest=10, total=140))


def test_prepare_sun_lt_gives_the_sizes_by_rank_and_reports_them(capsys, tmp_path, monkeypatch):
    """Classes of 7, 12 and 9 images keep 5, 10 and 7 after test and val; the exp profile (rho 4) is 10, 5, 2: by rank the
    12-image class takes 10, the 9-image one 5, the 7-image one 2 (in label order the first would have taken 10 and kept 5)."""
    sun_copy(tmp_path, {"a/abbey": 7, "b/bedroom": 12, "c/canal": 9})
    monkeypatch.setattr("oltr_nb.sun_lt.load_manifest", lambda name: tiny_sun(28, 4))
    code, res, err = run(capsys, "prepare", "sun_lt", "--source", tmp_path, "--out", tmp_path / "lists")
    assert code == 0, err
    labels = [int(l.split()[1]) for l in (tmp_path / "lists" / "SUN_LT_train.txt").read_text().splitlines()]
    assert [labels.count(c) for c in range(3)] == [2, 10, 5]
    assert res["long_tail"] == dict(classes=3, capped=0, intended=dict(largest=10, smallest=2, total=17),
                                    realised=dict(largest=10, smallest=2, total=17))
    assert yaml.safe_load((tmp_path / "lists" / "sun_lt.yaml").read_text())["long_tail"] == res["long_tail"]
    assert "SUN-LT long tail: 0 of 3 classes capped by the images they have; largest class 10 (intended 10)" in err
    flat = prepare_sun_lt(tmp_path, tmp_path / "flat", manifest=tiny_sun(28, 1))["long_tail"]   # 10 each: two classes have fewer
    assert flat == dict(classes=3, capped=2, intended=dict(largest=10, smallest=10, total=30), realised=dict(largest=10, smallest=5, total=22))


def test_make_lt_records_a_family_member(capsys, tmp_path):
    "make-lt digits_lt records a member of digits_lt_pareto: its counts follow the Pareto quantiles, its digest the split."
    for f in MANIFEST_DIR.glob("*.yaml"): shutil.copy(f, tmp_path)
    code, res, _ = run(capsys, "make-lt", "digits_lt", "--profile", "pareto", "--alpha", 1, "--manifest-dir", tmp_path)
    assert code == 0 and res["counts"]["train"] == [125, 35, 17, 9, 5, 5, 5]   # 125 * (p / (1 - p)) / 13, p = 13/14, 11/14, ...
    assert res == yaml.safe_load((MANIFEST_DIR / "digits_lt_pareto1.yaml").read_text())   # the recorded member


def test_console_script(tmp_path, hand_counted):
    exe = shutil.which("oltr-data", path=str(Path(sys.executable).parent))
    if exe is None: pytest.skip("console script oltr-data not installed in this environment")
    out = subprocess.run([exe, "stats", str(hand_counted)], capture_output=True, text=True, check=True).stdout
    assert json.loads(out)["num_images"] == 277


def test_stats_of_a_dataset_name_needs_its_split_folder(capsys):
    code, res, err = run(capsys, "stats", "places_lt")
    assert code == 2 and res is None and "places_lt is a dataset: give the folder of its split files with --splits" in err


def test_the_data_module_points_to_the_command():
    "`python -m oltr_nb.data` is the library, not a command: it says where the command is and exits 2."
    res = subprocess.run([sys.executable, "-m", "oltr_nb.data"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and "its command is oltr-data" in res.stderr


def cli(*argv):
    "Exit status, stdout and stderr of the installed console script `oltr-data argv`."
    exe = shutil.which("oltr-data", path=str(Path(sys.executable).parent))
    if exe is None: pytest.skip("console script oltr-data not installed in this environment")
    res = subprocess.run([exe, *map(str, argv)], capture_output=True, text=True, timeout=300)
    return res.returncode, res.stdout, res.stderr


def one_error(err, text):
    "stderr is the single line `oltr-data: ...`, naming `text`."
    assert err.startswith("oltr-data: ") and err.count("\n") == 1 and text in err, err


@pytest.fixture
def balanced(tmp_path):
    "23 classes x 20 images: 460 lines."
    return write_list(tmp_path / "in.txt", [(f"train/c{c}/{k}.jpg", c) for c in range(23) for k in range(20)])


def test_make_lt_refuses_to_write_over_its_input(capsys, tmp_path, balanced):
    before = balanced.read_text()
    (tmp_path / "link.txt").symlink_to(balanced)
    code, out, err = cli("make-lt", balanced, "--profile", "exp", "--out", tmp_path / "link.txt")
    assert code == 2 and out == ""
    one_error(err, f"link.txt: it is the input list {balanced}")
    for same in (balanced, tmp_path / "." / "in.txt", tmp_path / "sub" / ".." / "in.txt"):
        (tmp_path / "sub").mkdir(exist_ok=True)
        code, _, err = run(capsys, "make-lt", balanced, "--profile", "pareto", "--out", same)
        assert code == 2 and "is the input list" in err
    as_yaml = write_list(tmp_path / "list.yaml", [l.split() for l in before.splitlines()])   # the entry would go over it
    code, _, err = run(capsys, "make-lt", as_yaml, "--profile", "exp", "--out", tmp_path / "list.txt")
    assert code == 2 and "list.yaml is the input list" in err and not (tmp_path / "list.txt").exists()
    assert balanced.read_text() == before and as_yaml.read_text() == before


@pytest.mark.parametrize("profile", [["exp", "--rho", 100], ["pareto", "--alpha", 0.5, "--min", 1]])
def test_make_lt_keeps_every_class(capsys, tmp_path, balanced, profile):
    "20 images and rho 100: the exponential tail wants 20 / 100 < 1 image; every class keeps at least 1."
    code, res, _ = run(capsys, "make-lt", balanced, "--profile", *profile, "--out", tmp_path / "lt.txt")
    assert code == 0 and res["num_classes"] == 23 and res["min_per_class"] == 1 and res["profile"]["n_min"] == 1
    _, st, _ = run(capsys, "stats", tmp_path / "lt.txt")
    assert st["num_classes"] == 23 and st["min_per_class"] == 1


@pytest.mark.parametrize("args, message", [
    (["--profile", "pareto", "--max", 0], "--max=0 must be a whole number >= 1"),
    (["--profile", "pareto", "--min", 0], "--min=0 must be a whole number >= 1"),
    (["--profile", "pareto", "--min", 50, "--max", 10], "--min 50 is above the largest class size 10 (--max)"),
    (["--profile", "pareto", "--min", 50], "--min 50 is above the largest class size 20 (the input's largest class)"),
    (["--profile", "pareto", "--alpha", 0], "--alpha=0.0 must be a finite number > 0"),
    (["--profile", "exp", "--rho", 0.5], "--rho=0.5 must be a finite number >= 1"),
    (["--profile", "exp", "--rho", "nan"], "--rho=nan must be a finite number >= 1"),
    (["--profile", "exp", "--seed", -1], "--seed=-1 must be a whole number >= 0"),
])
def test_make_lt_refuses_bad_sizes(capsys, tmp_path, balanced, args, message):
    code, res, err = run(capsys, "make-lt", balanced, *args, "--out", tmp_path / "lt.txt")
    assert code == 2 and res is None and not (tmp_path / "lt.txt").exists()
    one_error(err, message)


@pytest.mark.parametrize("sample", [-3, 0])
def test_verify_sample_is_at_least_one(capsys, tiny_copy, sample):
    root, splits, mpath, _ = tiny_copy
    code, res, err = run(capsys, "verify", "tiny", "--splits", splits, "--images", root, "--manifest", mpath,
                         "--sample", sample, "--no-progress")
    assert code == 2 and res is None
    one_error(err, f"--sample={sample} must be a whole number >= 1")


@pytest.mark.parametrize("text, message", [
    ("splits: {train: {file: tiny_train.txt}\nnum_classes: 3\n", "tiny.yaml:2: not valid YAML"),
    ("- tiny_train.txt\n", "tiny.yaml: not a manifest: expected a mapping with splits, num_classes, thresholds, found a list"),
    ("name: tiny\nnum_classes: 3\n", "tiny.yaml: no 'splits' key"),
    ("splits: {train: {file: tiny_train.txt}}\nthresholds: {many: 3, few: 3}\n", "tiny.yaml: no num_classes key"),
    ("splits: {train: tiny_train.txt}\nnum_classes: 3\nthresholds: {many: 3, few: 3}\n", "tiny.yaml: splits.train needs a file"),
    ("splits: {train: {file: tiny_train.txt}}\nnum_classes: three\nthresholds: {many: 3, few: 3}\n",
     "tiny.yaml: num_classes='three' must be a whole number >= 1"),
])
def test_verify_names_what_is_wrong_with_a_manifest(capsys, tiny_copy, text, message):
    root, splits, mpath, _ = tiny_copy
    mpath.write_text(text)
    code, res, err = run(capsys, "verify", "tiny", "--splits", splits, "--manifest", mpath, "--no-progress")
    assert code == 2 and res is None
    one_error(err, message)


def test_verify_malformed_manifest_through_the_command(tiny_copy):
    root, splits, mpath, _ = tiny_copy
    mpath.write_text("name: tiny\nsplits: [a, b\n")
    code, out, err = cli("verify", "tiny", "--splits", splits, "--manifest", mpath, "--no-progress")
    assert code == 2 and out == ""
    one_error(err, f"{mpath}:3: not valid YAML")


def test_stats_of_a_directory_or_a_missing_file(tmp_path):
    code, out, err = cli("stats", tmp_path)
    assert code == 2 and out == ""
    one_error(err, f"{tmp_path} is a directory; stats takes a split file or a dataset name")
    code, out, err = cli("stats", tmp_path / "nope.txt")
    assert code == 2 and out == ""
    one_error(err, f"split file not found: {tmp_path / 'nope.txt'}")
