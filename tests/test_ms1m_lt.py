"""MS1M-LT and MegaFace as a user meets them: a RecordIO pack unpacked, the long-tailed sample drawn, the MegaFace
lists written, and the face ResNet-50 trained with plain, range and OLTR through `oltr-train`, ending in an
identification report; and the embedded stand-ins end to end."""
import io
import json
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, tool
from oltr_nb.data import FASHION_MNIST_DIR

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
    res = run("oltr-data", "make-ms1m-lt", "--images", root / "ms1m", "--hold-out", tmp_path / "hold.txt", "--val-identities", "3")
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
    assert set(i["subgroups"]) == {"female", "male"}
    counts = dict(l.split("\t") for l in (root / "ms1m_lt_identities.txt").read_text().splitlines())
    rows = (final / "eval" / "per_class.csv").read_text().splitlines()
    assert rows[1].split(",")[:3] == ["0", "Ann_A", counts["0"].strip()] and rows[2].split(",")[2] == "0"
    assert json.loads((final / "config.json").read_text())["backbone"] == "resnet50_face"
    return i


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
