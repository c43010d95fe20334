"""Every notebook under nbs/ through nbdev's test runner, one pytest case each."""
import subprocess

import pytest

from conftest import ROOT, tool

NOTEBOOKS = sorted(p.name for p in (ROOT / "nbs").glob("*.ipynb"))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook(name, runslow):
    cmd = [tool("nbdev-test"), f"nbs/{name}"] + (["--flags", "slow"] if runslow else [])
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, f"{name} failed under nbdev-test:\n{res.stdout[-6000:]}\n{res.stderr[-6000:]}"
