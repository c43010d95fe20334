"""Adding a row to the method table is all a new method needs: config, command line, engine and reports take it from there."""
import json

import pytest

from oltr_nb import methods
from oltr_nb.baselines import FocalLoss
from oltr_nb.config import make_config
from oltr_nb.experiments import ensure_run, run_stages
from oltr_nb.methods import CLASS_AWARE, DECOUPLED, Method, fit_crt
from oltr_nb.report import final_stage, method_metrics
from oltr_nb.train import make_parser


@pytest.fixture
def focal_crt(monkeypatch):
    "A new method: focal loss with class-aware sampling in stage 1, then cRT on its features."
    row = Method("Focal loss, then classifier re-training", "test", "posthoc", stages=(1, 2), criterion=FocalLoss,
                 criterion_args=dict(gamma=1.0), presets={1: CLASS_AWARE, 2: DECOUPLED}, fit=fit_crt)
    monkeypatch.setitem(methods.METHODS, "focal_crt", row)
    return "focal_crt"


def test_a_new_row_runs_end_to_end(tmp_path, focal_crt):
    cfg1, cfg2 = make_config("digits_lt", focal_crt, 1), make_config("digits_lt", focal_crt, 2)
    assert (cfg1.sampler, cfg2.sampler, cfg2.epochs) == ("class_aware", "class_balanced", 10)
    args = make_parser().parse_args(["--dataset", "digits_lt", "--method", focal_crt])
    assert args.method == focal_crt
    res = run_stages("digits_lt", focal_crt, out_dir=str(tmp_path), epochs=1, max_steps_per_epoch=2, progress=False)
    assert [r["metrics"]["stage"] for r in res] == [1, 2] and res[1]["metrics"]["method"] == focal_crt
    log = (tmp_path / "digits_lt" / focal_crt / "seed0" / "stage1" / "config.json").read_text()
    assert json.loads(log)["sampler"] == "class_aware"
    assert final_stage(focal_crt) == 2
    assert len(method_metrics(tmp_path, "digits_lt", focal_crt, [0])) == 1
    assert ensure_run("digits_lt", focal_crt, 0, tmp_path, run=False, epochs=1, max_steps_per_epoch=2)["status"] == "done"


def test_an_unknown_method_is_refused_everywhere():
    with pytest.raises(ValueError, match="method='focal_crt' is not allowed"):
        make_config("digits_lt", "focal_crt", 1)
    with pytest.raises(SystemExit):
        make_parser().parse_args(["--dataset", "digits_lt", "--method", "focal_crt"])


def test_readme_lists_every_method_once():
    "The README's list of `method` values is the method table's keys, in the table's order."
    import re
    from conftest import ROOT
    text = (ROOT / "README.md").read_text()
    listed = text.split("as `method`\n  values of the same engine:", 1)[1].split(". One table", 1)[0]
    assert re.findall(r"`(\w+)`", listed) == list(methods.METHODS)
