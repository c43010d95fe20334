"""Inputs that used to give a silent wrong result or an error naming no file, on images and lists generated in tmp_path."""
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from oltr_nb.core import InputError
from oltr_nb.manifests import load_manifest
from oltr_nb.preflight import overlap_problems, preflight
from oltr_nb.split_files import ImageListDataset, SplitEntry, content_digest, image_problem, parse_split
from oltr_nb.images import FastEvalTransform, FastTrainTransform, transform_preset


def write_list(path, rows):
    "A split file with one `path label` line per row."
    Path(path).write_text("".join(f"{p} {l}\n" for p, l in rows))
    return path


def grey_pair(root):
    "The same random grey picture as an 8-bit PNG and as a 16-bit PNG (each level v stored as 257 v)."
    g8 = np.random.default_rng(0).integers(0, 256, (60, 80), dtype=np.uint8)
    Image.fromarray(g8).save(root / "g8.png")
    Image.fromarray(g8.astype(np.uint16) * 257).save(root / "g16.png")
    return root / "g8.png", root / "g16.png"


def test_16bit_png_gives_the_eval_tensor_of_its_8bit_version(tmp_path):
    grey_pair(tmp_path)
    with Image.open(tmp_path / "g16.png") as im: assert im.mode == "I;16"
    ds = ImageListDataset(write_list(tmp_path / "list.txt", [("g8.png", 0), ("g16.png", 0)]), tmp_path, 1, FastEvalTransform(32, 36))
    a, b = ds[0][0], ds[1][0]
    level = 1 / 255 / min(0.229, 0.224, 0.225)  # one grey level in normalised units
    assert (a - b).abs().max() <= level + 1e-5
    assert (ds.transform.crop(tmp_path / "g16.png").float().mean() - ds.transform.crop(tmp_path / "g8.png").float().mean()).abs() < 1


def test_16bit_png_through_the_pil_and_training_paths(tmp_path):
    grey_pair(tmp_path)
    ds = ImageListDataset(write_list(tmp_path / "list.txt", [("g8.png", 0), ("g16.png", 0)]), tmp_path, 1)
    assert (ds[0][0] - ds[1][0]).abs().max() <= 1 / 255 + 1e-6  # PIL path: load() then a [0, 1] tensor
    train = ds.with_transform(FastTrainTransform(32))
    torch.manual_seed(0); a = train[0][0]
    torch.manual_seed(0); b = train[1][0]
    assert (a - b).abs().max() < 0.1  # same box, flip and jitter: within a level or two after the blends


def test_16bit_png_is_cropped_by_the_worker_not_the_device_decoder(tmp_path):
    from oltr_nb.gpu_input import JpegItems
    grey_pair(tmp_path)
    ds = ImageListDataset(write_list(tmp_path / "list.txt", [("g8.png", 0), ("g16.png", 0)]), tmp_path, 1, FastEvalTransform(32, 36))
    (p8, row8), (p16, row16) = JpegItems(ds)[0][0], JpegItems(ds)[1][0]
    assert row8[0] == row16[0] == 0.0  # not a JPEG: the worker decodes and crops it (open_for_crop), not nvJPEG
    assert np.abs(np.frombuffer(p8, np.uint8).astype(int) - np.frombuffer(p16, np.uint8)).max() <= 1


def test_float_image_is_refused_naming_file_and_line(tmp_path):
    Image.fromarray(np.full((8, 8), 0.5, dtype=np.float32)).save(tmp_path / "f.tif")
    ds = ImageListDataset(write_list(tmp_path / "list.txt", [("f.tif", 0)]), tmp_path, 1, FastEvalTransform(32, 36))
    with pytest.raises(InputError, match=r"list\.txt:1: cannot decode image .*f\.tif: .*mode F"): ds[0]
    with pytest.raises(InputError, match=r"list\.txt:1: .*mode F"): ds.with_transform(None)[0]


@pytest.mark.parametrize("ext", ["jpg", "png"])
def test_tiny_and_extreme_images_train_and_evaluate(tmp_path, ext):
    sizes = [(1, 1), (3, 2), (300, 1), (1, 300)]
    rows = []
    for k, s in enumerate(sizes):
        Image.new("RGB", s, (100, 50, 20)).save(tmp_path / f"{k}.{ext}")
        rows.append((f"{k}.{ext}", k))
    split = write_list(tmp_path / "list.txt", rows)
    t = dict(preset="imagenet", size=224, resize=256)
    for train in (True, False):
        ds = ImageListDataset(split, tmp_path, len(sizes), transform_preset(t, train, size=32))
        xs = [ds[i][0] for i in range(len(ds))]
        assert all(x.shape == (3, 32, 32) and torch.isfinite(x).all() for x in xs)
    crops = torch.stack([ds.transform.crop(tmp_path / p).float() for p, _ in rows])
    assert (crops.mean((0, 2, 3)) - torch.tensor([100.0, 50.0, 20.0])).abs().max() < 6  # the colour, not a blur of zeros


@pytest.fixture
def small_limit(monkeypatch):
    "PIL's decompression-bomb limit lowered so that a 20 x 20 image is over it (twice 100 pixels)."
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)


def test_decompression_bomb_names_file_line_and_limit(tmp_path, small_limit):
    Image.new("RGB", (20, 20), (9, 9, 9)).save(tmp_path / "big.png")
    split = write_list(tmp_path / "list.txt", [("big.png", 0)])
    for transform in (FastEvalTransform(32, 36), FastTrainTransform(32), None):
        ds = ImageListDataset(split, tmp_path, 1, transform)
        with pytest.raises(InputError, match=r"list\.txt:1: cannot decode image .*big\.png: .*PIL\.Image\.MAX_IMAGE_PIXELS"): ds[0]
    q = image_problem(tmp_path, SplitEntry("big.png", 0, 1), split, decode=True)
    assert q.startswith(f"{split}:1: cannot decode image ") and "big.png" in q and "decompression-bomb limit" in q
    assert image_problem(tmp_path, SplitEntry("big.png", 0, 1), split) is None  # the quick check does not decode


def test_byte_order_mark_is_not_part_of_the_first_path(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    rows = [("a.png", 0), ("a.png", 1)]
    plain = write_list(tmp_path / "plain.txt", rows)
    bom = tmp_path / "bom.txt"
    bom.write_text(plain.read_text(), encoding="utf-8-sig")
    assert bom.read_bytes().startswith(b"\xef\xbb\xbf")
    entries, problems = parse_split(bom, 2)
    assert problems == [] and entries[0].path == "a.png"
    assert content_digest(entries) == content_digest(parse_split(plain, 2)[0])
    assert ImageListDataset(bom, tmp_path, 2)[0][0].shape == (3, 8, 8)


def test_directory_and_symlink_loop_are_called_what_they_are(tmp_path):
    (tmp_path / "c" / "dir.jpg").mkdir(parents=True)
    os.symlink("loop.jpg", tmp_path / "c" / "loop.jpg")
    split = write_list(tmp_path / "list.txt", [("c/dir.jpg", 0), ("c/loop.jpg", 0), ("c/gone.jpg", 0)])
    found = [image_problem(tmp_path, e, split) for e in parse_split(split)[0]]
    assert found[0].startswith(f"{split}:1: ") and "is a directory, not an image file" in found[0]
    assert found[1].startswith(f"{split}:2: ") and "symbolic link loop" in found[1]
    assert found[2].startswith(f"{split}:3: ") and "not found" in found[2]
    ds = ImageListDataset(split, tmp_path, 1)
    with pytest.raises(InputError, match=r"list\.txt:1: .*is a directory, not an image file"): ds.path(0)
    with pytest.raises(InputError, match=r"list\.txt:2: .*symbolic link loop"): ds.path(1)
    Image.new("RGB", (8, 8)).save(tmp_path / "c" / "ok.jpg")
    split2 = write_list(tmp_path / "list2.txt", [("c/ok.jpg", 0), ("c/dir.jpg", 0), ("c/loop.jpg", 0)])
    sk = ImageListDataset(split2, tmp_path, 1, skip_bad=True)
    assert len(sk) == 1 and ["directory" in r or "loop" in r for _, _, r in sk.skipped] == [True, True]


def small_copy(tmp_path, lists, num_classes=3):
    "A places_lt-shaped copy: tiny JPEGs for every listed path, its split files, and its manifest with `num_classes`."
    m = load_manifest("places_lt").updated(num_classes=num_classes)
    images, splits = tmp_path / "images", tmp_path / "splits"
    splits.mkdir()
    for split, rows in lists.items():
        for p, _ in rows:
            (images / p).parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (8, 8), (30, 60, 90)).save(images / p)
        write_list(splits / m.splits[split].file, rows)
    return m, images, splits


def disjoint_lists(train_labels):
    "Train rows with these labels, and val, test, open rows of images of their own."
    return {"train": [(f"train/c{l}/t{k}.jpg", l) for k, l in enumerate(train_labels)],
            "val": [("train/c0/v0.jpg", 0)], "test": [("val/x0.jpg", 0)], "open": [("open/o0.jpg", -1)]}


def test_preflight_reports_classes_without_training_images(tmp_path):
    m, images, splits = small_copy(tmp_path, disjoint_lists([0, 0, 2]))
    train = splits / "Places_LT_train.txt"
    assert preflight("places_lt", images, splits, manifest=m) == [
        f"{train}: class 1 has no training image (every class in [0, 3) needs at least one)"]
    m5 = m.updated(num_classes=5)
    assert preflight("places_lt", images, splits, manifest=m5) == [
        f"{train}: classes 1, 3, 4 have no training image (every class in [0, 5) needs at least one)"]


def test_overlap_problems_on_generated_lists():
    E = lambda *paths: [SplitEntry(p, 0, n) for n, p in enumerate(paths, 1)]
    parsed = {"train": ("tr.txt", E("train/a/1.jpg", "train/a/2.jpg", "train/a/1.jpg", "train/b/3.jpg")),
              "val": ("va.txt", E("train/a/9.jpg", "data_256/a/a/2.jpg")),   # 2.jpg in another layout: the same image
              "test": ("te.txt", E("val/t1.jpg", "train/a/9.jpg")),
              "open": ("op.txt", E("open/o.jpg", "val/t1.jpg", "open/o.jpg"))}
    assert overlap_problems(parsed) == [
        "tr.txt:3: image 'train/a/1.jpg' is listed twice (first on line 1)",
        "va.txt:2: image 'data_256/a/a/2.jpg' is also in the train split (tr.txt:2)",
        "te.txt:2: image 'train/a/9.jpg' is also in the val split (va.txt:1)",
        "op.txt:3: image 'open/o.jpg' is listed twice (first on line 1)",
        "op.txt:2: image 'val/t1.jpg' is also in the test split (te.txt:1)"]
    assert overlap_problems({k: v for k, v in parsed.items() if k in ("test", "open")})[-1].startswith("op.txt:2:")


def test_overlap_problems_caps_each_pair():
    train = [SplitEntry(f"c/{k}.jpg", 0, k + 1) for k in range(12)]
    found = overlap_problems({"train": ("tr.txt", train), "test": ("te.txt", train)}, per_pair=5)
    assert len(found) == 6 and found[4].startswith("te.txt:5: ")
    assert found[5] == "te.txt: ... and 7 more images also in the train split (tr.txt)"


def test_preflight_reports_duplicates_and_leaks_unless_allowed(tmp_path):
    lists = disjoint_lists([0, 1, 2])
    lists["train"].append(lists["train"][0])                 # train line 4 repeats line 1
    lists["test"].append(("data_256/c/c1/t1.jpg", 1))         # a training image, in another layout
    lists["open"].append(("train/c0/v0.jpg", -1))             # a val image
    m, images, splits = small_copy(tmp_path, lists)
    shutil.rmtree(images / "data_256")  # so that line finds the training file through the data_256 layout
    f = {k: splits / v.file for k, v in m.splits.items()}
    assert preflight("places_lt", images, splits, manifest=m) == [
        f"{f['train']}:4: image 'train/c0/t0.jpg' is listed twice (first on line 1)",
        f"{f['test']}:2: image 'data_256/c/c1/t1.jpg' is also in the train split ({f['train']}:2)",
        f"{f['open']}:2: image 'train/c0/v0.jpg' is also in the val split ({f['val']}:1)"]
    assert preflight("places_lt", images, splits, manifest=m, allow_overlap=True) == []
    assert preflight("places_lt", images, splits, manifest=m, open_set=False)[-1].startswith(f"{f['test']}:2: ")


def test_same_name_in_two_split_folders_is_two_images(tmp_path):
    "An ImageFolder-style copy: train/c0/1.jpg and test/c0/1.jpg are different files, so no overlap is reported."
    lists = {"train": [("train/c0/1.jpg", 0), ("train/c1/1.jpg", 1), ("train/c2/1.jpg", 2)],
             "val": [("val/c0/1.jpg", 0)], "test": [("test/c0/1.jpg", 0)], "open": [("open/1.jpg", -1)]}
    m, images, splits = small_copy(tmp_path, lists)
    assert preflight("places_lt", images, splits, manifest=m) == []
    (images / "test" / "c0" / "1.jpg").unlink()  # now the test line can only mean the training image
    (images / "test" / "c0").rmdir(); (images / "test").rmdir()
    test_list = splits / m.splits["test"].file
    assert preflight("places_lt", images, splits, manifest=m)[-1] == (
        f"{test_list}:1: image 'test/c0/1.jpg' is also in the train split ({splits / m.splits['train'].file}:1)")


def test_error_in_a_loader_worker_keeps_its_one_line_message(tmp_path):
    "A truncated JPEG met by a DataLoader worker: the main process gets the worker's traceback; input_message gives the line back."
    from torch.utils.data import DataLoader
    from oltr_nb.core import input_message
    Image.new("RGB", (32, 32), (10, 120, 200)).save(tmp_path / "a.jpg", quality=95)
    data = (tmp_path / "a.jpg").read_bytes()
    (tmp_path / "a.jpg").write_bytes(data[: len(data) // 2])
    split = write_list(tmp_path / "list.txt", [("a.jpg", 0)])
    with pytest.raises(InputError) as caught:
        next(iter(DataLoader(ImageListDataset(split, tmp_path, 1), num_workers=1)))
    assert "Original Traceback" in str(caught.value)
    assert input_message(caught.value).startswith(f"{split}:1: cannot decode image {tmp_path / 'a.jpg'}")
    assert "\n" not in input_message(caught.value)
