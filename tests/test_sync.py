"""`nbdev-export` and `nbdev-clean` leave no diff: the package is the notebooks' export and the notebooks are clean."""
import filecmp
import shutil
import subprocess

from conftest import ROOT, tool


def _changed(a, b):
    "Files that differ, or exist on one side only, between folders `a` and `b` (recursively)."
    cmp = filecmp.dircmp(a, b, ignore=["__pycache__", ".ipynb_checkpoints"])
    out = [f"{a}/{n}" for n in cmp.diff_files + cmp.left_only + cmp.right_only]
    for sub in cmp.common_dirs:
        out += _changed(f"{a}/{sub}", f"{b}/{sub}")
    return out


def test_export_and_clean_leave_no_diff(tmp_path):
    for name in ("nbs", "oltr_nb"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    for cmd in ([tool("nbdev-clean")], [tool("nbdev-export")]):
        res = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
    changed = _changed(str(ROOT / "nbs"), str(tmp_path / "nbs")) + _changed(str(ROOT / "oltr_nb"), str(tmp_path / "oltr_nb"))
    assert not changed, "run nbdev-clean then nbdev-export and commit; these differ:\n" + "\n".join(changed)
