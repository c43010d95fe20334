"""MS1M-LT and MegaFace as a user meets them: a RecordIO pack unpacked, the long-tailed sample drawn as the paper
describes it (checked by hand and against its expectation), the MegaFace lists written, and the face ResNet-50 trained
with plain, range and OLTR through `oltr-train`, ending in an identification report; the subgroup columns in the
paper's order; and the embedded stand-ins end to end."""
import io
import json
import math
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from conftest import ROOT, tool
from oltr_nb.data import FASHION_MNIST_DIR
from oltr_nb.faces import PAPER_MS1M_LT_IDENTITIES, PAPER_MS1M_LT_IMAGES, keep_constant, ms1m_lt_expectation
from oltr_nb.manifests import load_manifest

PAPER_SUBGROUPS = ["male", "female"]  # the subgroup columns of the paper's MegaFace table, in its order

MAGIC = 0xCED7230A


def run(name, *args, timeout=900):
    return subprocess.run([tool(name), *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def face_bytes(seed, fmt="JPEG", size=32):
    "An encoded random face-sized image."
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buf, fmt)
    return buf.getvalue()


def write_recordio(folder, faces_per_identity):
    "insightface's layout: index record 0, then one record per face labelled with its identity (no marker inside)."
    records = [struct.pack("<IfQQ", 2, 0.0, 0, 0) + np.array([1 + sum(faces_per_identity), 0], np.float32).tobytes()]
    for ident, n in enumerate(faces_per_identity):
        records += [struct.pack("<IfQQ", 0, float(ident), 0, 0) + face_bytes(100 * ident + k) for k in range(n)]
    rec, idx = b"", ""
    for key, payload in enumerate(records):
        assert struct.pack("<I", MAGIC) not in payload
        idx += f"{key}\t{len(rec)}\n"
        rec += struct.pack("<II", MAGIC, len(payload)) + payload + b"\0" * (-len(payload) % 4)
    folder.mkdir(parents=True)
    (folder / "train.rec").write_bytes(rec); (folder / "train.idx").write_text(idx)
    (folder / "property").write_text(f"{len(faces_per_identity)},32,32")
    return folder


def face_copy(tmp_path):
    "A user's copy: RecordIO unpacked, MS1M-LT drawn (identity 5 held out), FaceScrub/MegaFace lists, a person map."
    root = tmp_path / "data"
    pack = write_recordio(tmp_path / "faces_emore", [8, 6, 5, 4, 3, 2])
    res = run("oltr-data", "prepare", "ms1m_lt", "--source", pack, "--out", root / "ms1m")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["images"] == 28
    (tmp_path / "hold.txt").write_text("5\n")
    res = run("oltr-data", "make-ms1m-lt", "--images", root / "ms1m", "--hold-out", tmp_path / "hold.txt", "--val-identities", "3",
              "--target-images", "20")   # of the 26 faces outside the hold-out; identity 0 (8 faces) keeps all of them
    assert res.returncode == 0, res.stderr
    for person in ("Ann_A", "Bob_B", "Cy_C"):
        (root / "facescrub" / person).mkdir(parents=True)
        for k in range(3): (root / "facescrub" / person / f"{k}.png").write_bytes(face_bytes(1000 + 10 * len(person) + k, "PNG"))
    (root / "megaface" / "0").mkdir(parents=True)
    for k in range(5): (root / "megaface" / "0" / f"{k}.jpg").write_bytes(face_bytes(2000 + k))
    res = run("oltr-data", "megaface-lists", "--root", root)
    assert res.returncode == 0, res.stderr
    (root / "facescrub_to_ms1m.txt").write_text("Ann_A\t0\nBob_B\t5\n")   # Ann: a trained identity; Bob: held out
    return root


def train_faces(root, out, method):
    "One quick run of `method` on the face ResNet-50; checks and returns its identification metrics."
    quick = ["--dataset", "ms1m_lt", "--data-root", root, "--in-size", "32", "--batch-size", "8", "--num-samples-cls", "2",
             "--epochs", "1", "--max-steps-per-epoch", "1", "--lr-scale", "0.001", "--out-dir", out, "--deterministic"]
    # one small step: with tiny batches of 2x2 maps a full-size step leaves BatchNorm's running statistics far behind
    res = run("oltr-train", *quick, "--method", method)
    assert res.returncode == 0, res.stderr[-3000:]
    final = out / "ms1m_lt" / method / "seed0" / ("stage2" if method == "oltr" else "stage1")
    m = json.loads((final / "eval" / "metrics.json").read_text())
    i = m["identification"]
    assert m["closed"] is None and m["open"] is None and i["counts"]["trials"] == 3 * 3 * 2 and i["counts"]["distractors"] == 5
    assert 0 <= i["full"] <= 1 and i["many"] is None and i["few"] is None     # the many/few boundary is unknown
    assert list(i["subgroups"]) == PAPER_SUBGROUPS
    counts = dict(l.split("\t") for l in (root / "ms1m_lt_identities.txt").read_text().splitlines())
    rows = (final / "eval" / "per_class.csv").read_text().splitlines()
    assert rows[1].split(",")[:3] == ["0", "Ann_A", counts["0"].strip()] and rows[2].split(",")[2] == "0"
    assert json.loads((final / "config.json").read_text())["backbone"] == "resnet50_face"
    return i


def test_keep_probabilities_by_hand():
    "Identities of 20, 4, 2 and 2 images, 26 kept on average: the 20 capped, c = (26 - 20) / (16 + 4 + 4) = 1/4."
    ex = ms1m_lt_expectation([20, 4, 2, 2], 26)
    assert ex["c"] == pytest.approx(0.25) and ex["p"].tolist() == [1, 1, 0.5, 0.5]
    assert (ex["images"], ex["images_sd"], ex["identities"]) == pytest.approx((26, 1, 3.5))  # sd: sqrt(2 * 2 * 1/4); 1 + 1 + 2 * 3/4
    assert ex["identities_sd"] == pytest.approx(math.sqrt(2 * 0.75 * 0.25))
    assert keep_constant([2, 20, 2, 4], 4.24) == pytest.approx(0.01)     # nothing capped: 4.24 / (400 + 16 + 4 + 4)
    assert keep_constant([20, 4, 2, 2], 28) == pytest.approx(0.5)        # every image: 1 / the smallest identity


def test_make_ms1m_lt_lands_near_its_expectation(tmp_path):
    """A seeded draw over 600 generated identities (ceil(300 / (i + 1)) faces each, 2,349 in all), 800 faces kept on average:
    the images and identities drawn lie within 4 standard deviations of their expectation, printed beside the paper's."""
    images = tmp_path / "data" / "ms1m"
    for i in range(600):
        (images / f"id{i:03d}").mkdir(parents=True)
        for k in range(math.ceil(300 / (i + 1))): (images / f"id{i:03d}" / f"{k}.jpg").touch()   # the draw reads names only
    res = run("oltr-data", "make-ms1m-lt", "--images", images, "--target-images", 800, "--val-identities", 5)
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)["sample"]
    e, got = s["expected"], s["realised"]
    assert (e["images"], e["images_sd"], e["identities"], e["identities_sd"]) == pytest.approx((800, 12.6, 59.2, 5.1))
    assert abs(got["images"] - e["images"]) <= 4 * e["images_sd"] and abs(got["identities"] - e["identities"]) <= 4 * e["identities_sd"]
    assert (got["max_per_identity"], s["paper"]) == (300, dict(images=PAPER_MS1M_LT_IMAGES, identities=PAPER_MS1M_LT_IDENTITIES))
    assert f"{got['identities']:,} identities (expected 59.2 +/- 5.1; the paper: 74,500)" in res.stderr
    assert len((tmp_path / "data" / "ms1m_lt_identities.txt").read_text().splitlines()) == got["identities"]


def test_subgroup_order_is_the_papers_in_both_files():
    "The manifest's subgroups, its copy of the paper's numbers and oltr_nb/paper_numbers.yaml: male then female, same values."
    manifest = yaml.safe_load((ROOT / "data_manifests" / "ms1m_lt.yaml").read_text())
    paper = yaml.safe_load((ROOT / "oltr_nb" / "paper_numbers.yaml").read_text())["megaface"]
    assert manifest["subgroups"] == load_manifest("ms1m_lt").subgroups == PAPER_SUBGROUPS
    assert manifest["paper_numbers"]["columns"][-2:] == paper["columns"][-2:] == PAPER_SUBGROUPS
    for key, row in (("plain_model", "Plain model"), ("range_loss", "Range loss"), ("oltr", "OLTR")):
        assert manifest["paper_numbers"][key] == paper["rows"][row]


def test_recordio_to_identification_report(tmp_path):
    train_faces(face_copy(tmp_path), tmp_path / "runs", "oltr")


@pytest.mark.slow
def test_plain_and_range_on_faces(tmp_path):
    root = face_copy(tmp_path)
    for method in ("plain", "range"): train_faces(root, tmp_path / "runs", method)


def test_posthoc_method_refused_for_identification(tmp_path):
    res = run("oltr-train", "--dataset", "digits_lt_id", "--method", "crt", "--out-dir", tmp_path)
    assert res.returncode != 0 and "tested by identification" in res.stderr
    assert not (tmp_path / "digits_lt_id").exists()


def test_digits_stand_in_end_to_end(tmp_path):
    res = run("oltr-train", "--dataset", "digits_lt_id", "--method", "oltr", "--epochs", "1", "--max-steps-per-epoch", "2",
              "--out-dir", tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    m = json.loads((tmp_path / "digits_lt_id" / "oltr" / "seed0" / "stage2" / "eval" / "metrics.json").read_text())
    assert m["stand_in"].startswith("STAND-IN") and m["identification"]["counts"]["trials"] == 8 * 20 * 19
    assert m["identification"]["groups"]["identities"] == dict(many=2, few=3, one=1, zero=2, unsplit=0)
    assert all(m["identification"][g] is not None for g in ("full", "many", "few", "one", "zero"))


@pytest.mark.slow
def test_fashion_stand_in_end_to_end(tmp_path):
    if not (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").exists() and not (FASHION_MNIST_DIR / "train-images-idx3-ubyte").exists():
        pytest.skip("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    res = run("oltr-train", "--dataset", "fashion_mnist_lt_id", "--method", "oltr", "--epochs", "2", "--out-dir", tmp_path, timeout=3600)
    assert res.returncode == 0, res.stderr[-3000:]
    m = json.loads((tmp_path / "fashion_mnist_lt_id" / "oltr" / "seed0" / "stage2" / "eval" / "metrics.json").read_text())
    assert m["identification"]["counts"]["trials"] == 8 * 100 * 99 and m["identification"]["counts"]["distractors"] == 14000
    # a trial is won when the mate beats all 14,000 distractors: chance is 1/14,001; two epochs reached 0.146 here
    assert m["identification"]["full"] > 0.05, m["identification"]
