"""The report notebooks as a reader gets them from papermill: no claim the runs cannot support, nothing cut, no progress bars."""
import json
import re
import shlex
import subprocess

from conftest import ROOT, tool
import numpy as np
import pytest
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.colors import to_hex

from oltr_nb.config import config_sha256
from oltr_nb.config import stage_configs
from oltr_nb.data import build_data
from oltr_nb.experiments import ensure_run
from oltr_nb.manifests import member_name
from oltr_nb.model_figures import (f_measure_vs_open_classes, memory_choices, few_shot_examples, open_source_classes,
                                   plot_memory_choices, plot_open_classes, plot_reachability, plot_reliability,
                                   plot_threshold_sweep)
from oltr_nb.report import (SHOT_COLOURS, fake_run, final_stage, load_model, load_run, method_colour, plot_per_class,
                            plot_training_curves, runs_stamp)
from oltr_nb.run_folder import stage_dir
from oltr_nb.studies import ablation_table, alpha_results, plot_ablations, plot_vs_alpha
from oltr_nb.train import make_parser, resolve_configs


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
    args.pop("print_config"), args.pop("dry_run")
    return config_sha256(resolve_configs(args)[0][-1])


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


QUICK = dict(epochs=1, max_steps_per_epoch=2)
STAMP = "quick: epochs=1, 2 steps/epoch, 1 seed"


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory):
    "Plain and OLTR on digits_lt, 1 epoch of 2 steps a stage (OLTR's stage 2 from plain's stage 1): method -> final stage folder."
    runs = tmp_path_factory.mktemp("runs")
    return {m: ensure_run("digits_lt", m, 0, runs, reuse_stage1=True, **QUICK)["run_dir"] for m in ("plain", "oltr")}


def title_of(fig) -> str:
    "The figure's title: its suptitle, else its first axes' title."
    return fig._suptitle.get_text() if fig._suptitle else fig.axes[0].get_title()


def says_what(fig, dataset="digits_lt", stamp=STAMP):
    "The title names the dataset and carries the settings stamp."
    assert dataset in title_of(fig) and stamp in title_of(fig), title_of(fig)


def within_fractions(ax):
    "Every plotted line, bar, interval and band of a fraction axis lies in [0, 1]."
    ys = [y for l in ax.get_lines() for y in np.asarray(l.get_ydata(), float)]
    ys += [y for c in ax.collections if isinstance(c, LineCollection) for seg in c.get_segments() for _, y in seg]
    ys += [y for c in ax.collections if isinstance(c, PolyCollection) for path in c.get_paths() for _, y in path.vertices]
    ys += [p.get_y() + p.get_height() for p in ax.patches if hasattr(p, "get_height")]
    ys = [y for y in ys if np.isfinite(y)]
    assert ys and min(ys) >= -1e-9 and max(ys) <= 1 + 1e-9, (min(ys), max(ys))


def test_figures_of_quick_runs_say_what_they_show(quick_runs):
    "Each figure function on quick runs: dataset and stamp in the title, the palette's colours, every interval in [0, 1]."
    plain, oltr = (load_run(quick_runs[m]) for m in ("plain", "oltr"))
    fig = plot_training_curves([plain, oltr])  # OLTR's stage 2 started from plain's stage 1
    says_what(fig)
    assert [to_hex(l.get_color()) for l in fig.axes[0].get_lines()] == [method_colour("plain"), method_colour("oltr")]
    within_fractions(fig.axes[1])
    fig = plot_per_class([plain, oltr])
    says_what(fig)
    assert [to_hex(l.get_color()) for l in fig.axes[0].get_lines()[:2]] == [method_colour("plain"), method_colour("oltr")]
    within_fractions(fig.axes[0])
    fig = plot_reliability(quick_runs["oltr"])
    says_what(fig)
    for ax in fig.axes:
        group = ax.get_title().split("-shot")[0]
        assert {to_hex(p.get_facecolor()) for p in ax.patches} == {SHOT_COLOURS[group]}
        assert sum(int(t.get_text()) for t in ax.texts) == int(ax.get_title().split(": ")[1].split(" ")[0])  # the bin counts
        within_fractions(ax)
    fig = plot_reachability(quick_runs["oltr"])
    says_what(fig)
    assert {to_hex(p.get_edgecolor()) for p in fig.axes[0].patches} <= set(SHOT_COLOURS.values())
    data = build_data("digits_lt")
    choices = memory_choices(load_model(quick_runs["oltr"], data), data.test, few_shot_examples(data, 2), k=2)
    says_what(plot_memory_choices(choices, data, run_dir=quick_runs["oltr"]))
    fig = plot_ablations(ablation_table({"full OLTR": dict(status="done", run_dir=quick_runs["oltr"])}), "digits_lt",
                         runs_stamp([quick_runs["oltr"]]))
    says_what(fig)
    assert {to_hex(p.get_facecolor()) for ax in fig.axes for p in ax.patches} == {method_colour("oltr")}
    for ax in fig.axes: within_fractions(ax)


def test_threshold_sweep_reaches_1_and_marks_1_over_C(quick_runs):
    "digits_lt has 7 known classes: the sweep runs to 1, marks 1/7 and 0.1, says 0.1 rejects nothing; AUROC/OSCR beside it."
    fig = plot_threshold_sweep(quick_runs)
    says_what(fig)
    ax, bx = fig.axes
    curves, marks = ax.get_lines()[:2], ax.get_lines()[2:]
    assert [to_hex(l.get_color()) for l in curves] == [method_colour("plain"), method_colour("oltr")]
    assert all(l.get_xdata()[-1] == 1.0 for l in curves) and ax.get_xlim() == (0.0, 1.0)
    assert [l.get_xdata()[0] for l in marks] == [1 / 7, 0.1]
    assert "1/C = 0.143" in marks[0].get_label() and "0.1" in marks[1].get_label()
    assert any("no image can be rejected" in t.get_text() for t in ax.texts)
    assert [to_hex(p.get_facecolor()) for p in bx.patches] == [method_colour(m) for m in ("plain", "plain", "oltr", "oltr")]
    within_fractions(ax); within_fractions(bx)
    source = open_source_classes("digits_lt")
    curves = {m: f_measure_vs_open_classes(d, source, 0.1) for m, d in quick_runs.items()}
    fig = plot_open_classes(curves, quick_runs, 0.1)
    says_what(fig)
    assert any("no image can be rejected" in t.get_text() for t in fig.axes[0].texts)
    assert [to_hex(l.get_color()) for l in fig.axes[0].get_lines()] == [method_colour("plain"), method_colour("oltr")]
    within_fractions(fig.axes[0])


def test_imbalance_figure_shows_seeds_and_cut_intervals(tmp_path):
    "Two seeds: points, no interval; three seeds near 1: the interval cut at 1 and said so; the stamp counts the seeds."
    family, F = "digits_lt_pareto", {(0.5, "plain"): (0.97, 0.99, 0.90), (0.5, "oltr"): (0.98, 0.99, 0.93),
                                     (6, "plain"): (0.5, 0.6), (6, "oltr"): (0.55, 0.62)}
    for (a, m), fs in F.items():
        for seed, f in enumerate(fs):
            name = member_name(family, a)
            fake_run(stage_dir(tmp_path, name, m, seed, final_stage(m)), m, f, f, stage=final_stage(m), seed=seed, few=f,
                     dataset=name, **QUICK)
    fig = plot_vs_alpha(alpha_results(tmp_path, family, [0.5, 6], seeds=[0, 1, 2]), family)
    says_what(fig, family, "quick: epochs=1, 2 steps/epoch, 3 seeds")
    for ax in fig.axes[:-1]:
        within_fractions(ax)
        bars = [seg for c in ax.collections if isinstance(c, LineCollection) for seg in c.get_segments()]
        assert len(bars) == 2 and all(seg[0][0] == 0.5 for seg in bars)  # alpha 0.5 (3 seeds) only: no 2-seed interval
        assert {to_hex(l.get_color()) for l in ax.get_lines()} == {method_colour("plain"), method_colour("oltr")}
    assert "cut at the range's end" in fig.texts[-1].get_text()
