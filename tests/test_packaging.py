"""Packaging: environment.yml names pyproject's dependencies, the console scripts answer, nbdev settings are right."""
import re
import subprocess
import tomllib

import yaml

from conftest import ROOT, tool

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
