"""Evaluating checkpoints, rerunning a run from its file, variants side by side, and the notebooks' header commands."""
import json
import re
import shlex
import subprocess
from pathlib import Path

import torch
import yaml

from conftest import ROOT, tool
from oltr_nb.checkpoint_eval import tiny_imagenet_lt
from oltr_nb.experiments import list_parameter
from oltr_nb.models import OFFICIAL_MODELS, build_model, save_official_checkpoint
from oltr_nb.report import variants_table

QUICK = ["--dataset", "digits_lt", "--epochs", "2", "--max-steps-per-epoch", "3", "--deterministic"]


def run(*cmd, timeout=900):
    return subprocess.run([str(c) for c in cmd], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def results(folder) -> dict:
    "A metrics.json without its provenance (which names the time, the device and the checkpoint's path)."
    m = json.loads((Path(folder) / "eval" / "metrics.json").read_text())
    m.pop("provenance")
    return m


def test_official_stage2_checkpoint_through_the_cli_and_papermill(tmp_path):
    root = tiny_imagenet_lt(tmp_path / "imagenet")
    torch.manual_seed(0)
    net = build_model(**OFFICIAL_MODELS["imagenet_lt", 2]).set_centroids(torch.randn(1000, 512))
    ckpt = save_official_checkpoint(net, tmp_path / "final_model_checkpoint.pth", epoch=60, best_acc=0.35, stage=2)
    common = ["--data-root", root, "--device", "cpu", "--batch-size", "4", "--num-workers", "0"]
    cli = run(tool("oltr-eval"), ckpt, "--dataset", "imagenet_lt", *common, "--out", tmp_path / "cli")
    assert cli.returncode == 0, cli.stderr[-3000:]
    assert "the paper: 0.3560" in cli.stdout and (tmp_path / "cli" / "eval" / "logits.npz").exists()
    params = [a for k, v in (("checkpoint", ckpt), ("dataset", "imagenet_lt"), ("data_root", root), ("device", "cpu"),
                             ("batch_size", 4), ("out_dir", tmp_path / "runs")) for a in ("-p", k, str(v))]
    pm = run(tool("papermill"), "--cwd", ROOT, "nbs/run_experiment.ipynb", tmp_path / "out.ipynb", *params)
    assert pm.returncode == 0, pm.stderr[-3000:]
    (made,) = (tmp_path / "evaluations").glob("final_model_checkpoint*")  # beside it: the notebook's figures/
    assert results(made) == results(tmp_path / "cli")
    assert json.loads((made / "eval" / "metrics.json").read_text())["provenance"]["checkpoint"] == str(ckpt)


def test_best_pt_config_rerun_and_a_finished_run_met_again(tmp_path):
    first = run(tool("oltr-train"), *QUICK, "--method", "oltr", "--out-dir", tmp_path / "a")
    assert first.returncode == 0, first.stderr[-3000:]
    stage2 = tmp_path / "a" / "digits_lt" / "oltr" / "seed0" / "stage2"
    assert "closed top-1" in first.stdout and f"metrics:     {stage2 / 'eval' / 'metrics.json'}" in first.stdout
    again = run(tool("oltr-eval"), stage2 / "best.pt")
    assert again.returncode == 0, again.stderr[-3000:]
    assert results(stage2 / "evaluations" / "best") == results(stage2)
    met = run(tool("oltr-train"), *QUICK, "--method", "oltr", "--out-dir", tmp_path / "a")
    assert met.returncode == 0 and met.stdout.count("finished with these settings, not trained again") == 2, met.stdout
    rerun = run(tool("oltr-train"), "--config", stage2 / "config.json", "--out-dir", tmp_path / "b")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert not (tmp_path / "b" / "digits_lt" / "oltr" / "seed0" / "stage1").exists()  # stage 2 only, from a's stage 1
    assert results(tmp_path / "b" / "digits_lt" / "oltr" / "seed0" / "stage2") == results(stage2)


def test_a_posthoc_stage_is_evaluated_again_from_its_folder(tmp_path):
    first = run(tool("oltr-train"), *QUICK, "--method", "crt", "--out-dir", tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    stage2 = tmp_path / "digits_lt" / "crt" / "seed0" / "stage2"
    kept = (stage2.parent / "stage1" / "features.pt").read_bytes()
    again = run(tool("oltr-eval"), stage2)
    assert again.returncode == 0, again.stderr[-3000:]
    assert results(stage2 / "evaluations" / "fit") == results(stage2)
    assert (stage2.parent / "stage1" / "features.pt").read_bytes() == kept  # read, not rewritten
    assert not (stage2 / "evaluations" / "fit" / "features.pt").exists()  # its key held: no cache of its own
    keeps = run(tool("oltr-eval"), stage2.parent / "stage1")
    assert keeps.returncode == 2 and "which keeps its weights: give its best.pt" in keeps.stderr, keeps.stderr


def test_named_variants_sit_side_by_side_in_one_table(tmp_path):
    for extra in ([], ["--name", "lr0.02", "--feat-lr", "0.02"]):
        res = run(tool("oltr-train"), *QUICK, "--method", "plain", "--out-dir", tmp_path, *extra)
        assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / "digits_lt" / "plain" / "lr0.02" / "seed0" / "stage1" / "eval" / "metrics.json").exists()
    table = variants_table(tmp_path, "digits_lt", "plain")
    assert list(table.frame.index) == ["(no name)", "lr0.02"] and table.frame["feat_lr"].tolist() == [0.1, 0.02]


def header_commands(notebook: Path) -> list:
    "The papermill commands in a notebook's first markdown cells, as argument lists."
    text = "\n".join("".join(c["source"]) for c in json.loads(notebook.read_text())["cells"][:3] if c["cell_type"] == "markdown")
    return [shlex.split(m.replace("\\\n", " ")) for m in re.findall(r"^papermill .*?(?<!\\)$", text, re.M | re.S)]


def test_each_notebooks_header_command_parses():
    "Every papermill command a notebook shows: its parameters exist, and each list parameter reads as a list."
    from papermill.cli import _resolve_type
    checked = []
    for nb in sorted((ROOT / "nbs").glob("[a-z]*.ipynb")):
        params = next("".join(c["source"]) for c in json.loads(nb.read_text())["cells"] if "parameters" in c["metadata"].get("tags", []))
        defaults = {}
        exec(params, {}, defaults)
        for cmd in header_commands(nb):
            pairs = [(cmd[i + 1], cmd[i + 2]) for i, a in enumerate(cmd) if a == "-p"]
            given = {k: _resolve_type(v) for k, v in pairs}
            for i, a in enumerate(cmd):
                if a == "-y": given.update(yaml.safe_load(cmd[i + 1]))
            assert set(given) <= set(defaults), (nb.name, set(given) - set(defaults))
            for k, v in given.items():
                if isinstance(defaults[k], list): list_parameter(k, v)
            checked.append(nb.name)
    assert {"run_experiment.ipynb", "paper_tables.ipynb", "long_tailedness.ipynb", "ablations.ipynb"} <= set(checked), checked
