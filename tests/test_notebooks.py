"""Every notebook under nbs/ through nbdev's test runner, one pytest case each, each with runs of its own."""
import os
import subprocess

import pytest

from conftest import ROOT, tool

NOTEBOOKS = sorted(p.name for p in (ROOT / "nbs").glob("*.ipynb"))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook(name, runslow, tmp_path):
    "A notebook runs top to bottom; its default runs folder is a fresh one, so no notebook meets another's quick runs."
    cmd = [tool("nbdev-test"), f"nbs/{name}"] + (["--flags", "slow"] if runslow else [])
    env = {**os.environ, "OLTR_RUNS_DIR": str(tmp_path / "runs")}
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, f"{name} failed under nbdev-test:\n{res.stdout[-6000:]}\n{res.stderr[-6000:]}"
