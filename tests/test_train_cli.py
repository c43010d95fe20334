"""`oltr-train` as a user runs it: every option documented, resume after a real kill, DDP on CPU."""
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import ROOT, tool
from oltr_nb.config import ExperimentConfig

QUICK = ["--dataset", "digits_lt", "--max-steps-per-epoch", "3", "--deterministic"]


def oltr_train(*args, timeout=600):
    return subprocess.run([tool("oltr-train"), *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def stage_dir(out, method="plain", stage=1):
    return Path(out) / "digits_lt" / method / "seed0" / f"stage{stage}"


def test_help_documents_every_option():
    res = oltr_train("--help")
    assert res.returncode == 0
    for f in dataclasses.fields(ExperimentConfig):
        if f.name not in ("dataset", "method", "stage"):
            assert "--" + f.name.replace("_", "-") in res.stdout, f.name
    assert "--stages" in res.stdout and "--resume" in res.stdout


def test_bad_value_names_the_parameter(tmp_path):
    res = oltr_train(*QUICK, "--method", "plain", "--amp", "fp8", "--out-dir", str(tmp_path))
    assert res.returncode != 0 and "amp='fp8' is not allowed" in res.stderr


def test_resume_after_kill_matches_uninterrupted_run(tmp_path):
    args = [*QUICK, "--method", "plain", "--epochs", "6"]
    full = oltr_train(*args, "--out-dir", str(tmp_path / "full"))
    assert full.returncode == 0, full.stderr[-3000:]
    killed_dir = stage_dir(tmp_path / "killed")
    proc = subprocess.Popen([tool("oltr-train"), *args, "--out-dir", str(tmp_path / "killed")], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and not (killed_dir / "last.pt").exists():
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed_dir / "eval").exists(), "the run finished before it could be killed"
    epochs_done = torch.load(killed_dir / "last.pt", weights_only=False)["epoch"]
    assert 1 <= epochs_done < 6
    resumed = oltr_train(*args, "--out-dir", str(tmp_path / "killed"), "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a = torch.load(stage_dir(tmp_path / "full") / "last.pt", weights_only=False)["model"]
    b = torch.load(killed_dir / "last.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ from the uninterrupted run's"
    ma = json.loads((stage_dir(tmp_path / "full") / "eval" / "metrics.json").read_text())
    mb = json.loads((killed_dir / "eval" / "metrics.json").read_text())
    assert ma["closed"] == mb["closed"] and ma["open"] == mb["open"]
    epochs = [line.split(",")[0] for line in (killed_dir / "log.csv").read_text().splitlines()[1:]]
    assert epochs == [str(e) for e in range(1, 7)], f"log.csv is not one row per epoch: {epochs}"
    assert not list(killed_dir.glob(".*.tmp")), "a temporary file of the killed write was left"


def torchrun(nproc, *args):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "oltr_nb.train", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)


def test_ddp_two_processes_match_one(tmp_path):
    "Same global batch on 1 and 2 gloo processes: the same closed top-1 within 5 points (BatchNorm sees half batches)."
    args = [*QUICK, "--method", "plain", "--epochs", "3", "--batch-size", "64"]
    one = torchrun(1, *args, "--out-dir", str(tmp_path / "one"))
    two = torchrun(2, *args, "--out-dir", str(tmp_path / "two"))
    assert one.returncode == 0, one.stderr[-3000:]
    assert two.returncode == 0, two.stderr[-3000:]
    m1 = json.loads((stage_dir(tmp_path / "one") / "eval" / "metrics.json").read_text())
    m2 = json.loads((stage_dir(tmp_path / "two") / "eval" / "metrics.json").read_text())
    assert abs(m1["closed"]["top1"] - m2["closed"]["top1"]) <= 0.05


def test_ddp_metrics_equal_a_reevaluation_of_best(tmp_path):
    "All ranks evaluate the best.pt rank 0 wrote: the run's test logits and metrics equal a second evaluation of that file, bit for bit."
    args = [*QUICK, "--method", "plain", "--epochs", "4", "--batch-size", "64", "--out-dir", str(tmp_path)]
    first = torchrun(2, *args)
    assert first.returncode == 0, first.stderr[-3000:]
    ev = stage_dir(tmp_path) / "eval"
    logits, metrics = dict(np.load(ev / "logits.npz")), json.loads((ev / "metrics.json").read_text())
    again = torchrun(2, *args, "--resume")  # a finished run resumed: best.pt evaluated once more, nothing trained
    assert again.returncode == 0, again.stderr[-3000:]
    relogits, remetrics = dict(np.load(ev / "logits.npz")), json.loads((ev / "metrics.json").read_text())
    assert logits.keys() == relogits.keys() and all(np.array_equal(logits[k], relogits[k]) for k in logits), \
        f"{int((logits['logits'] != relogits['logits']).any(1).sum())} test images have other logits"
    assert (metrics["closed"], metrics["open"]) == (remetrics["closed"], remetrics["open"])


def test_ddp_stage2_runs_on_two_processes(tmp_path):
    "Stage 2 (centroid pass, meta-embedding, centroid loss) under DDP, which the official code could not do."
    res = torchrun(2, *QUICK, "--method", "oltr", "--epochs", "2", "--batch-size", "56", "--out-dir", str(tmp_path))
    assert res.returncode == 0, res.stderr[-3000:]
    m = json.loads((stage_dir(tmp_path, "oltr", 2) / "eval" / "metrics.json").read_text())
    assert 0 <= m["closed"]["top1"] <= 1


def no_traceback(res):
    "An input error ends with exit status 2 and a message, never a traceback."
    assert res.returncode == 2, (res.returncode, res.stderr[-3000:])
    assert "Traceback" not in res.stderr and res.stderr.startswith("oltr-train: "), res.stderr[-3000:]
    return res.stderr


def test_run_folder_holds_one_run(tmp_path):
    "A finished run met again is reported, not trained; a fresh start with other settings is refused naming them, a resume too; --overwrite starts clean."
    args = [*QUICK, "--method", "plain", "--epochs", "2", "--out-dir", str(tmp_path)]
    assert oltr_train(*args).returncode == 0
    folder = stage_dir(tmp_path)
    before = {p.name: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file() and p.name != ".lock"}
    again = oltr_train(*args)
    assert again.returncode == 0 and f"{folder}: finished with these settings, not trained again" in again.stdout
    assert f"metrics:     {folder / 'eval' / 'metrics.json'}" in again.stdout
    said = no_traceback(oltr_train(*args, "--lr-scale", "0.5"))
    assert f"{folder} holds a run" in said and "finished with other settings (lr_scale: 1.0 in the run, 0.5 now)" in said
    assert "--overwrite" in said and "--name" in said
    said = no_traceback(oltr_train(*args, "--resume", "--lr-scale", "0.5"))
    assert "lr_scale: 1.0 in the run, 0.5 now" in said and "num_workers" in said
    assert before == {p.name: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file() and p.name != ".lock"}
    (folder / "eval" / "stale.txt").write_text("left by an older run")
    assert oltr_train(*args[:-2], "--epochs", "3", "--out-dir", str(tmp_path), "--overwrite").returncode == 0
    assert not (folder / "eval" / "stale.txt").exists()
    assert [line.split(",")[0] for line in (folder / "log.csv").read_text().splitlines()] == ["epoch", "1", "2", "3"]
    config = json.loads((folder / "config.json").read_text())
    metrics = json.loads((folder / "eval" / "metrics.json").read_text())
    from oltr_nb.config import config_from_dict, config_sha256
    assert config["epochs"] == 3 and metrics["provenance"]["config_sha256"] == config_sha256(config_from_dict(config))
    (folder / "last.pt").write_bytes((folder / "last.pt").read_bytes()[:1000])
    said = no_traceback(oltr_train(*args[:-2], "--epochs", "3", "--out-dir", str(tmp_path), "--resume"))
    assert f"{folder / 'last.pt'}: cannot read this checkpoint" in said and "--overwrite" in said


def test_second_run_into_a_busy_folder_stops_naming_the_holder(tmp_path):
    "Two runs into one folder: the second stops at once with the first one's process id; once that one is killed, the folder is free."
    args = [*QUICK, "--method", "plain", "--epochs", "500", "--out-dir", str(tmp_path)]
    first = subprocess.Popen([tool("oltr-train"), *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and not (stage_dir(tmp_path) / "config.json").exists():
            time.sleep(0.05)
        said = no_traceback(oltr_train(*args, "--resume"))
        assert first.poll() is None, "the first run ended before the second one started"
        assert f"{stage_dir(tmp_path)} is in use by another run (process {first.pid} on " in said
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert oltr_train(*args[:-4], "--epochs", "1", "--out-dir", str(tmp_path), "--overwrite").returncode == 0


@pytest.mark.parametrize("bad,message", [(["--lr-step", "0"], "lr_step=0 must be a whole number >= 1"),
                                         (["--batch-size", "100000"], "batch_size=100000 is larger than the 292 training images")])
def test_bad_value_exits_2_before_any_work(tmp_path, bad, message):
    said = no_traceback(oltr_train(*QUICK, "--method", "plain", *bad, "--out-dir", str(tmp_path)))
    assert message in said and not any(tmp_path.iterdir())


@pytest.mark.parametrize("bad,message", [(["--lr-step", "-1"], "lr_step=-1 must be a whole number >= 1"),
                                         (["--lr-milestones", "1"], "lr_gammas=None must give one learning-rate factor per milestone"),
                                         (["--lr-scale", "inf"], "lr_scale=inf must be a finite number > 0"),
                                         (["--device", "gpu"], "device='gpu' is not allowed"),
                                         (["--stages", "3"], "stages='3' is not allowed for method='plain'")])
def test_more_bad_values_exit_2(capsys, tmp_path, bad, message):
    "The same path in-process (a subprocess per case costs seconds each)."
    from oltr_nb.train import main
    with pytest.raises(SystemExit) as ended:
        main([*QUICK, "--method", "plain", *bad, "--out-dir", str(tmp_path)])
    assert ended.value.code == 2 and message in capsys.readouterr().err and not any(tmp_path.iterdir())


def test_places_lt_lists_every_missing_input_at_once(tmp_path):
    "A user's Places-LT copy with a missing val image, an empty test image, no open list and no pretrained weights."
    from PIL import Image
    rows = []
    for c, name in enumerate(("abbey", "bamboo")):
        (tmp_path / "images" / "train" / name).mkdir(parents=True)
        for k in range(3):
            Image.new("RGB", (8, 8), (80 * c, 40 * k, 90)).save(tmp_path / "images" / "train" / name / f"{k}.jpg")
            rows.append(f"train/{name}/{k}.jpg {c}\n")
    (tmp_path / "images" / "train" / "bamboo" / "2.jpg").write_bytes(b"")
    splits = tmp_path / "splits"; splits.mkdir()
    (splits / "Places_LT_train.txt").write_text("".join(rows))
    (splits / "Places_LT_val.txt").write_text(rows[0] + "train/abbey/9.jpg 0\n")
    (splits / "Places_LT_test.txt").write_text(rows[1] + rows[5])
    said = no_traceback(oltr_train("--dataset", "places_lt", "--method", "oltr", "--data-root", str(tmp_path / "images"),
                                   "--split-dir", str(splits), "--out-dir", str(tmp_path / "runs")))
    assert said.splitlines()[0] == "oltr-train: 10 problem(s) with the inputs of places_lt oltr; nothing was started:"
    for expected in ("Places_LT_train.txt: classes 2, 3, 4", "(363 in all) have no training image",
                     "Places_LT_val.txt:1: image 'train/abbey/0.jpg' is also in the train split",
                     "Places_LT_test.txt:2: image 'train/bamboo/2.jpg' is also in the train split",
                     "Places_LT_train.txt:6: image file is empty", "Places_LT_val.txt:2: image 'train/abbey/9.jpg' not found",
                     "Places_LT_test.txt:2: image file is empty", "Places_LT_open.txt: open-set list not found",
                     "--no-open-set", "pretrained is required", "batch_size=128 is larger than the 6 training images",
                     "where the data comes from: images: Places365"):
        assert expected in said, expected
    assert not (tmp_path / "runs").exists()
