"""The report notebooks as a reader gets them from papermill: no claim the runs cannot support, nothing cut, no progress bars."""
import json
import re
import shlex
import subprocess

from conftest import ROOT, tool
from oltr_nb.config import config_sha256
from oltr_nb.config import stage_configs
from oltr_nb.train import make_parser


def execute(notebook, out, *params):
    "Run nbs/<notebook> with papermill and `-p` parameters; return the executed notebook as JSON."
    args = [a for k, v in params for a in ("-p", k, str(v))]
    res = subprocess.run([tool("papermill"), "--cwd", str(ROOT / "nbs"), f"nbs/{notebook}", str(out), *args],
                         cwd=ROOT, capture_output=True, text=True, timeout=1500)
    assert res.returncode == 0, res.stderr[-5000:]
    return json.loads(out.read_text())


def outputs(nb):
    "(kind, text) of every output: 'stdout'/'stderr' streams, 'html', 'markdown' and 'plain' displays."
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            if o["output_type"] == "stream":
                yield o["name"], "".join(o["text"])
            for kind in ("text/html", "text/markdown", "text/plain"):
                if kind in o.get("data", {}):
                    yield kind.split("/")[1], "".join(o["data"][kind])


def check_readable(nb, first=0):
    "From code cell `first` on: nothing on stderr (no progress bars, no warnings), no cut table, no NaN."
    outs = list(outputs({"cells": [c for c in nb["cells"] if c["cell_type"] == "code"][first:]}))
    assert [t for k, t in outs if k == "stderr"] == []
    assert not any("IProgress" in t for _, t in outs)
    for kind, text in outs:
        if kind == "html":
            assert "..." not in text and "NaN" not in text, text[:2000]
    return outs


def command_hash(command):
    "The configuration hash of the final stage an oltr-train command makes."
    args = vars(make_parser().parse_args(shlex.split(command)[1:]))
    dataset, method, stages = args.pop("dataset"), args.pop("method"), args.pop("stages")
    return config_sha256(stage_configs(dataset, method, stages, **args)[-1])


def test_paper_tables_make_no_claim_across_settings(tmp_path):
    "OLTR finished with other settings than the notebook's quick plain run: no claim, the difference said, every command whole."
    runs = tmp_path / "runs"
    res = subprocess.run([tool("oltr-train"), "--dataset", "digits_lt", "--method", "oltr", "--epochs", "1",
                          "--max-steps-per-epoch", "2", "--out-dir", str(runs)], capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    nb = execute("paper_tables.ipynb", tmp_path / "pt.ipynb", ("runs_dir", runs))
    outs = check_readable(nb)
    html = "\n".join(t for k, t in outs if k == "html")
    assert "as the paper claims" not in html
    assert "no claim: settings differ: Plain model: epochs=2, max_steps_per_epoch=3; OLTR: epochs=1, max_steps_per_epoch=2" in html
    commands = [l for k, t in outs if k == "stdout" for l in t.splitlines() if l.startswith("oltr-train --dataset digits_lt ")]
    assert commands, "the missing runs' commands are printed"
    for c in commands:
        m = re.search(r"--method (\S+)", c).group(1)
        want = config_sha256(stage_configs("digits_lt", m, None, out_dir=str(runs), epochs=2, max_steps_per_epoch=3)[-1])
        assert command_hash(c) == want and f"--out-dir {runs}" in c, c
    figures = sorted(p.name for p in (runs / "figures" / "paper_tables").glob("*.png"))
    assert "digits_lt_per_class.png" in figures and "digits_lt_oltr_reachability.png" in figures
    assert all(f"figure: {runs / 'figures' / 'paper_tables' / f}" in "\n".join(t for k, t in outs if k == "stdout") for f in figures)


def test_run_experiment_prints_one_line_per_epoch(tmp_path):
    "Under papermill: one stdout line per epoch, the metrics' notes beside the table, '-' for null, the figures as files."
    nb = execute("run_experiment.ipynb", tmp_path / "re.ipynb", ("out_dir", tmp_path / "runs"), ("epochs", 1))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    outs = check_readable(nb, first=next(i for i, c in enumerate(code) if "train_configs(" in "".join(c["source"])))
    stdout = "\n".join(t for k, t in outs if k == "stdout")
    assert re.findall(r"^stage (\d) epoch 1/1: loss [\d.]+, val top-1 [\d.]+, [\d.]+ s$", stdout, re.M) == ["1", "2"]
    assert "open threshold 0.1 is below 1/C" in stdout  # digits_lt's note, printed under the table
    figures = tmp_path / "runs" / "digits_lt" / "oltr" / "seed0" / "figures"
    assert sorted(p.name for p in figures.glob("*.png")) == ["per_class.png", "training_curves.png"]
    assert f"figure: {figures / 'per_class.png'}" in stdout
