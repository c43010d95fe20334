"""`oltr-train` against a hostile user: each fault ends before any work with one message (exit 2), or, where the fault
strikes mid-run (a full disk, Ctrl-C), with one line that says what is kept; never a traceback, never a silent result."""
import contextlib
import json
import signal
import subprocess
import time

import pytest
import torch

from conftest import ROOT, tool

QUICK = ["--dataset", "digits_lt", "--max-steps-per-epoch", "2", "--deterministic"]


def oltr_train(*args, timeout=600):
    return subprocess.run([tool("oltr-train"), *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def stage_dir(out, method="plain", stage=1):
    return out / "digits_lt" / method / "seed0" / f"stage{stage}"


def one_message(res, status=2):
    "The command ended with `status` and one message of its own, no traceback."
    assert res.returncode == status, (res.returncode, res.stderr[-3000:])
    assert "Traceback" not in res.stderr and res.stderr.startswith("oltr-train: "), res.stderr[-3000:]
    return res.stderr


def files(folder):
    "Every file under `folder` (but the lock) with its modification time."
    return {str(p): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file() and p.name != ".lock"}


@contextlib.contextmanager
def mounted_tmpfs(where, options):
    "A small tmpfs at `where` for the block (skips the test where this machine cannot mount one)."
    where.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True, text=True)
    if res.returncode: pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    try: yield where
    finally: subprocess.run(["umount", str(where)], check=False)


def test_resume_refuses_a_checkpoint_of_other_data(tmp_path):
    "last.pt says it trained on other split lists: --resume stops before work and rewrites nothing, config.json included."
    args = [*QUICK, "--method", "plain", "--epochs", "2", "--out-dir", tmp_path]
    assert oltr_train(*args).returncode == 0
    last = stage_dir(tmp_path) / "last.pt"
    ckpt = torch.load(last, weights_only=False)
    assert len(ckpt["split_digest"]) == 64
    torch.save({**ckpt, "split_digest": "f" * 64}, last)
    before = files(tmp_path)
    said = one_message(oltr_train(*args, "--resume"))
    assert f"{last}: trained on other data (split digest ffffffffffff..." in said and "--overwrite" in said
    assert files(tmp_path) == before
    metrics = stage_dir(tmp_path) / "eval" / "metrics.json"
    m = json.loads(metrics.read_text())
    metrics.write_text(json.dumps({**m, "provenance": {**m["provenance"], "split_digest": "e" * 64}}))
    before = files(tmp_path)
    said = one_message(oltr_train(*args))  # met again without --resume: a finished run on other lists is not its result
    assert "finished with these settings on other data (split digest eeeeeeeeeeee..." in said and "--overwrite" in said
    assert files(tmp_path) == before


def test_resume_refuses_the_other_stages_checkpoint(tmp_path):
    "Stage 2's last.pt replaced by stage 1's (a valid checkpoint of another model): a message, not a state-dict error."
    args = [*QUICK, "--method", "oltr", "--epochs", "1", "--batch-size", "56", "--out-dir", tmp_path]
    assert oltr_train(*args).returncode == 0
    (stage_dir(tmp_path, "oltr", 2) / "last.pt").write_bytes((stage_dir(tmp_path, "oltr", 1) / "last.pt").read_bytes())
    said = one_message(oltr_train(*args, "--stages", "2", "--resume"))
    assert "last.pt: a checkpoint of stage 1 of oltr on digits_lt, not of stage 2 of oltr on digits_lt" in said


@pytest.mark.parametrize("bad,message", [
    (["--in-size", "3"], "in_size=3: digits_lt's images are 8x8 and are used as they are"),
    (["--pretrained", "/nope.pth"], "pretrained='/nope.pth': digits_lt's stage 1 trains from scratch"),
    (["--epochs", "1.5"], "argument --epochs: invalid int value: '1.5' (oltr-train --help lists the options)"),
])
def test_settings_a_run_would_not_use_are_refused(tmp_path, bad, message):
    said = one_message(oltr_train(*QUICK, "--method", "plain", *bad, "--out-dir", tmp_path))
    assert message in said and len(said.splitlines()) <= 2, said
    assert not list(tmp_path.rglob("*.pt"))


def test_out_dir_that_is_a_file(tmp_path):
    (tmp_path / "runs").write_text("a file where the runs should go")
    said = one_message(oltr_train(*QUICK, "--method", "plain", "--out-dir", tmp_path / "runs"))
    assert "the run cannot write there (Not a directory)" in said and "--out-dir" in said


def test_read_only_out_dir(tmp_path):
    with mounted_tmpfs(tmp_path / "ro", "ro,size=1m") as ro:
        said = one_message(oltr_train(*QUICK, "--method", "plain", "--out-dir", ro))
    assert "the run cannot write there (Read-only file system)" in said


def test_full_disk_keeps_the_last_good_checkpoint(tmp_path):
    "A disk with room for config.json and the log but not for a checkpoint: one line naming the file, exit 1."
    with mounted_tmpfs(tmp_path / "small", "size=8m") as small:
        said = one_message(oltr_train(*QUICK, "--method", "plain", "--epochs", "2", "--out-dir", small), status=1)
        assert "best.pt: could not be written" in said and "is the disk full or read-only?" in said
        assert not list(stage_dir(small).glob(".*.tmp")), "a temporary file of the failed write was left"


def test_fresh_start_into_a_busy_folder_names_the_holder(tmp_path):
    "A fresh start into a folder another run holds says it is busy; it does not suggest --overwrite, which the lock would refuse."
    args = [*QUICK, "--method", "plain", "--epochs", "500", "--out-dir", tmp_path]
    first = subprocess.Popen([tool("oltr-train"), *map(str, args)], cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and not (stage_dir(tmp_path) / "log.csv").exists():
            time.sleep(0.05)
        for extra in ([], ["--overwrite"]):
            said = one_message(oltr_train(*args, *extra))
            assert f"is in use by another run (process {first.pid} on " in said and "holds a run" not in said, said
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()


def test_ctrl_c_ends_in_one_line(tmp_path):
    args = [*QUICK, "--method", "plain", "--epochs", "500", "--out-dir", tmp_path]
    proc = subprocess.Popen([tool("oltr-train"), *map(str, args)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and not (stage_dir(tmp_path) / "last.pt").exists():
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err[-3000:]
    assert err.strip().splitlines()[-1] == ("oltr-train: stopped by Ctrl-C; every finished epoch's checkpoint is kept: "
                                           "continue with --resume")
    assert torch.load(stage_dir(tmp_path) / "last.pt", weights_only=False)["epoch"] >= 1


def test_posthoc_stage_never_reads_a_cache_of_other_inputs(tmp_path):
    "crt's stage-1 feature cache made without the open set is not reused by a run with it (nor the reverse)."
    import numpy as np
    args = [*QUICK, "--method", "crt", "--epochs", "1", "--out-dir", tmp_path]
    assert oltr_train(*args, "--no-open-set").returncode == 0
    final = stage_dir(tmp_path, "crt", 2) / "eval"
    closed = json.loads((final / "metrics.json").read_text())
    assert closed["open"]["auroc"] is None and (np.load(final / "logits.npz")["labels"] >= 0).all()
    assert oltr_train(*args, "--stages", "2", "--overwrite").returncode == 0
    opened = json.loads((final / "metrics.json").read_text())
    assert opened["open"]["auroc"] is not None and (np.load(final / "logits.npz")["labels"] == -1).sum() == 533
    assert oltr_train(*args, "--stages", "2", "--overwrite", "--no-open-set").returncode == 0
    again = json.loads((final / "metrics.json").read_text())
    assert again["open"]["auroc"] is None and again["closed"] == closed["closed"]
