"""The experiment notebook end to end through papermill, as a user runs it."""
import json
import re
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


def input_error(res, tmp_path, message):
    "papermill ends with its own status 1; the cell's error is the message alone, and nothing was trained."
    assert res.returncode == 1, res.stderr[-3000:]
    assert f"InputError: {message}" in res.stderr, res.stderr[-3000:]
    assert not (tmp_path / "runs").exists(), "a run folder was made before the inputs were checked"
    cell_errors = [o for c in json.loads((tmp_path / "out.ipynb").read_text())["cells"] for o in c.get("outputs", [])
                   if o.get("output_type") == "error"]
    assert [e["traceback"] for e in cell_errors] == [[f"InputError: {cell_errors[0]['evalue']}"]]


@pytest.mark.parametrize("name,value,message", [
    ("epochs", 1.5, "epochs=1.5 must be a whole number >= 1"),
    ("lr_scale", "inf", "lr_scale=inf must be a finite number > 0"),
    ("lr_sacle", 0.5, "unknown parameter(s): lr_sacle; this notebook's parameters are: dataset, method, stages, nproc"),
    ("resume", "yes", "resume='yes' must be True or False")])
def test_bad_parameter_stops_before_any_work(tmp_path, name, value, message):
    input_error(papermill(tmp_path, (name, value)), tmp_path, message)


def test_places_lt_without_its_data_lists_what_is_missing(tmp_path):
    res = papermill(tmp_path, ("dataset", "places_lt"))
    input_error(res, tmp_path, "2 problem(s) with the inputs of places_lt oltr; nothing was started:")
    for expected in ("data_root is required for places_lt", "in whichever of these layouts the copy uses",
                     "Places_LT_train.txt, Places_LT_val.txt",
                     "pretrained is required", "where the data comes from: images: Places365"):
        assert expected in res.stderr, expected


def test_every_parameter_is_known_to_the_parameter_check():
    "The names the config cell accepts are the parameters cell's own."
    from papermill import inspect_notebook
    config_cell = next("".join(c["source"]) for c in json.loads((ROOT / "nbs" / "run_experiment.ipynb").read_text())["cells"]
                       if "check_parameters(" in "".join(c["source"]))
    for name in inspect_notebook(str(ROOT / "nbs" / "run_experiment.ipynb")):
        assert f'"{name}"' in config_cell or re.search(rf"[(,\s]{name}=", config_cell), name  # a name, or a key of overrides


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
