"""The meta-embedding figures on a quick OLTR run: the memories' coefficients, their images, the projection, the report notebook."""
import numpy as np
import pytest
from matplotlib.colors import to_hex

from oltr_nb.data import build_data
from oltr_nb.experiments import ensure_run
from oltr_nb.meta_embedding import (embeddings, memory_examples, nearest_to_centroids, pick_examples, plot_embeddings,
                                    plot_memory_examples, project)
from oltr_nb.model_figures import image_groups
from oltr_nb.report import SHOT_COLOURS, load_model
from test_reports import check_readable, execute


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    "A quick digits_lt OLTR run (2 epochs of 3 steps per stage), its data, model, embeddings and groups."
    runs = tmp_path_factory.mktemp("runs")
    stage2 = ensure_run("digits_lt", "oltr", 0, runs, epochs=2, max_steps_per_epoch=3)["run_dir"]
    data = build_data("digits_lt")
    model = load_model(stage2, data)
    return dict(runs=runs, stage2=stage2, data=data, model=model, out=embeddings(model, data.open_test(), stage2),
                groups=image_groups(stage2))


def test_top_memories_are_the_largest_coefficients_sorted(quick):
    data, out, groups, n = quick["data"], quick["out"], quick["groups"], len(quick["data"].test)
    picks = pick_examples(out["logits"][:n], out["labels"][:n], groups[:n], "few", n_right=3, n_wrong=3)
    assert picks and set(groups[picks]) == {"few"}
    train = embeddings(quick["model"], data.train_eval, quick["stage2"], keep=("features",))
    shown = nearest_to_centroids(train["features"], train["labels"], quick["model"].centroids)
    table = memory_examples(quick["model"], data, picks, groups[:n], shown, k=3)
    assert [train["labels"][i] for i in table["shown_by"].sum()] == table["classes"].sum()  # each memory shown by its class
    for r in table.itertuples():
        o = out["hallucination"][r.index]
        assert list(r.weights) == sorted(r.weights, reverse=True)
        np.testing.assert_allclose(r.weights, np.sort(o)[::-1][:3], atol=1e-3)  # the three largest of all K
        np.testing.assert_allclose(o[r.classes], r.weights, atol=1e-3)           # and they belong to the classes listed
        assert r.right == (r.prediction == r.label) == (out["logits"][r.index].argmax() == out["labels"][r.index])
    fig = plot_memory_examples(table, data, "digits_lt")
    assert len(fig.axes) == len(table) * 4


def test_nearest_to_centroid_by_hand():
    "Class 0: images at 0, 1, 3 and its centroid at 2.6 -> the third; class 1 at the origin -> (0, 4), not class 0's (0, 0)."
    features = np.array([[0.0, 0], [1, 0], [3, 0], [0, 5], [0, 4]])
    assert nearest_to_centroids(features, [0, 0, 0, 1, 1], [[2.6, 0], [0, 0], [9, 9]]).tolist() == [2, 4, -1]
    assert nearest_to_centroids(features, [1, 1, 1, 0, 0], [[0, 0], [0.9, 0]]).tolist() == [4, 1]


def test_projection_one_point_per_image_in_the_group_colours(quick):
    out, groups = quick["out"], quick["groups"]
    points, origin = project(out["meta"])
    assert points.shape == (len(out["labels"]), 2) and origin.shape == (2,)
    fig = plot_embeddings(out, groups, "digits_lt")
    present = [g for g in SHOT_COLOURS if (groups == g).any()]
    assert present == ["many", "medium", "few", "open"]
    for ax in fig.axes[:2]:
        assert [len(c.get_offsets()) for c in ax.collections] == [(groups == g).sum() for g in present]
        assert sum(len(c.get_offsets()) for c in ax.collections) == len(out["labels"])
        assert [to_hex(c.get_facecolor()[0], keep_alpha=False) for c in ax.collections] == [SHOT_COLOURS[g] for g in present]
    boxes = fig.axes[2].patches
    assert [to_hex(b.get_facecolor(), keep_alpha=False) for b in boxes] == [SHOT_COLOURS[g] for g in present]


def test_report_notebook_renders_both_figures(quick, tmp_path):
    "meta_embedding.ipynb on the quick run: both PNGs written and named, the settings stamp on them, nothing on stderr."
    figures = tmp_path / "figures"
    nb = execute("meta_embedding.ipynb", tmp_path / "me.ipynb", ("runs_dir", quick["runs"]), ("figures_dir", figures))
    outs = check_readable(nb)
    stdout = "\n".join(t for k, t in outs if k == "stdout")
    for name in ("digits_lt_meta_embedding_memories.png", "digits_lt_meta_embedding_projection.png"):
        assert (figures / name).read_bytes()[:4] == b"\x89PNG"
        assert f"figure: {figures / name}" in stdout
    html = "\n".join(t for k, t in outs if k == "html")
    assert "epochs=2, max_steps_per_epoch=3" in html and "few" in html
    images = [o for c in nb["cells"] for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 2
