"""Packaging: environment.yml names pyproject's dependencies, the console scripts answer, nbdev settings are right."""
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib

import yaml

from conftest import ROOT, VENV_BIN, tool

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_matches_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_list = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-e .[dev]" in pip_list
    assert sorted(p for p in pip_list if not p.startswith("-e")) == sorted(PYPROJECT["project"]["dependencies"])
    assert "python=3.11" in env["dependencies"]


def test_dependencies_admit_the_local_torch():
    deps = {re.split(r"[<>=!~ ]", d)[0]: d for d in PYPROJECT["project"]["dependencies"]}
    from packaging.specifiers import SpecifierSet
    assert "2.14.1" in SpecifierSet(deps["torch"][len("torch"):])
    assert "0.29.1" in SpecifierSet(deps["torchvision"][len("torchvision"):])


def test_nbdev_settings():
    nb = PYPROJECT["tool"]["nbdev"]
    assert nb["tst_flags"].split() == ["notest", "slow", "gpu"]
    assert nb["allowed_cell_metadata_keys"] == ["tags"]
    assert not (ROOT / "settings.ini").exists()


def test_console_scripts_answer_help():
    for name in PYPROJECT["project"]["scripts"]:
        res = subprocess.run([tool(name), "--help"], capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, f"{name} --help failed: {res.stderr[-2000:]}"
        assert "usage" in res.stdout.lower()


def test_wheel_installs_and_trains_from_another_folder(tmp_path):
    "The built wheel carries the manifests: installed into a fresh environment, it trains digits_lt from a folder outside the checkout."
    src = tmp_path / "src"; src.mkdir()  # a copy, so that the build leaves nothing in the checkout
    for name in ("pyproject.toml", "README.md", "oltr_nb", "data_manifests"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, src / name)
    python = str(VENV_BIN / "python")
    subprocess.run([python, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src)],
                   check=True, capture_output=True, timeout=600)
    wheel = next((tmp_path / "dist").glob("oltr_nb-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    site = next(venv.glob("lib/python*/site-packages"))
    deps = subprocess.run([python, "-c", "import torch, os; print(os.path.dirname(os.path.dirname(torch.__file__)))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (site / "project_dependencies.pth").write_text(deps + "\n")  # torch and the rest from the project's environment
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True, timeout=300)
    elsewhere = tmp_path / "elsewhere"; elsewhere.mkdir()
    alone = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "OLTR_RUNS_DIR")}  # nothing from the checkout
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import oltr_nb.manifests as m; print(m.MANIFEST_DIR)"],
                           cwd=elsewhere, capture_output=True, text=True, check=True, env=alone).stdout.strip()
    assert where.startswith(str(site)), where
    res = subprocess.run([str(venv / "bin" / "oltr-train"), "--dataset", "digits_lt", "--method", "plain", "--epochs", "1",
                          "--max-steps-per-epoch", "2", "--out-dir", str(elsewhere / "runs")],
                         cwd=elsewhere, capture_output=True, text=True, timeout=600, env=alone)
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = json.loads((elsewhere / "runs" / "digits_lt" / "plain" / "seed0" / "stage1" / "eval" / "metrics.json").read_text())
    assert 0 <= metrics["closed"]["top1"] <= 1 and metrics["provenance"]["git_sha"] is None
