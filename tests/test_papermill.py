"""The experiment notebook end to end through papermill, as a user runs it."""
import json
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, tool
from oltr_nb.methods import METHODS


def papermill(tmp_path, *params):
    "Execute nbs/run_experiment.ipynb with `-p` parameters; return the completed process."
    args = [a for k, v in params for a in ("-p", k, str(v))]
    cmd = [tool("papermill"), "--cwd", str(ROOT), "nbs/run_experiment.ipynb", str(tmp_path / "out.ipynb"),
           "-p", "out_dir", str(tmp_path / "runs"), *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1500)


def metrics(tmp_path, dataset, method, stage):
    return json.loads((tmp_path / "runs" / dataset / method / "seed0" / f"stage{stage}" / "eval" / "metrics.json").read_text())


@pytest.mark.parametrize("method", list(METHODS))
def test_digits_runs_end_to_end(tmp_path, method):
    "Every method through papermill on digits_lt (2 epochs a stage), rendered, never writing inside nbs/."
    last_stage = METHODS[method].stages[-1]
    res = papermill(tmp_path, ("method", method), ("epochs", 2))
    assert res.returncode == 0, res.stderr[-5000:]
    m = metrics(tmp_path, "digits_lt", method, last_stage)
    assert m["method"] == method and 0.0 <= m["closed"]["top1"] <= 1.0
    out = json.loads((tmp_path / "out.ipynb").read_text())
    kinds = {o.get("output_type") for c in out["cells"] for o in c.get("outputs", [])}
    assert "display_data" in kinds  # the figures and the table were rendered
    assert not list((ROOT / "nbs").glob("runs")), "a run wrote inside nbs/"


def test_unknown_dataset_stops_with_allowed_values(tmp_path):
    res = papermill(tmp_path, ("dataset", "mnist_lt"))
    assert res.returncode != 0
    assert "dataset='mnist_lt' is not allowed; choose one of: digits_lt" in res.stderr + res.stdout


def test_unknown_method_stops_with_allowed_values(tmp_path):
    res = papermill(tmp_path, ("method", "magic"))
    assert res.returncode != 0
    assert "method='magic' is not allowed; choose one of: plain, oltr, msp" in res.stderr + res.stdout


def test_first_cell_lists_every_method_with_its_reference():
    first = "".join(json.loads((ROOT / "nbs" / "run_experiment.ipynb").read_text())["cells"][0]["source"])
    for name, row in METHODS.items():
        assert f"| `{name}` | {','.join(map(str, row.stages))} |" in first and row.reference in first, name


@pytest.mark.slow
@pytest.mark.parametrize("method,last_stage", [("plain", 1), ("oltr", 2)])
def test_fashion_mnist_runs_end_to_end(tmp_path, method, last_stage):
    if not Path("/usr/share/datasets/fashion-mnist").exists():
        pytest.skip("Debian package dataset-fashion-mnist is not installed")
    res = papermill(tmp_path, ("dataset", "fashion_mnist_lt"), ("method", method))
    assert res.returncode == 0, res.stderr[-5000:]
    assert metrics(tmp_path, "fashion_mnist_lt", method, last_stage)["closed"]["top1"] > 0.5
