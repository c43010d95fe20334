"Device input (oltr_nb.gpu_input) against the official pipeline, on the CPU and, where there is one, on CUDA; no timing assertions."
import json

import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from oltr_nb.config import make_config
from oltr_nb.data import build_image_folder
from oltr_nb.manifests import load_manifest
from oltr_nb.split_files import ImageListDataset
from oltr_nb.gpu_input import (COL, DeviceAugment, JpegItems, Prefetcher, collate_jpegs, device_items, make_batches,
                               uses_device_input)
from oltr_nb.images import FastEvalTransform, FastTrainTransform, official_transforms
from oltr_nb.loop import train_stage
from oltr_nb.benchmarking import write_synthetic_jpegs

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"))]

@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("jpegs")
    sizes = ((500, 375), (400, 300), (640, 480), (333, 500), (1200, 900))
    lines = write_synthetic_jpegs(root, 10, num_classes=10, sizes=sizes)
    Image.open(root / lines[0].split()[0]).convert("CMYK").save(root / "cmyk.jpg")  # cropped by the worker
    (root / "split.txt").write_text("\n".join(lines + ["cmyk.jpg 3"]) + "\n")
    return ImageListDataset(root / "split.txt", root, num_classes=10)

def official(src, seed, repeat=1):
    torch.manual_seed(seed)
    t = official_transforms(train=True)
    return torch.stack([t(Image.open(src.path(k)).convert("RGB")) for _ in range(repeat) for k in range(len(src))])

def device_path(src, seed, device, repeat=1, transform=None):
    items = JpegItems(src.with_transform(transform or FastTrainTransform()))
    augment = DeviceAugment(items, device)
    torch.manual_seed(seed)
    batches = [collate_jpegs([items[k] for k in range(len(items))])[0] for _ in range(repeat)]
    return torch.cat([augment(b).float().cpu() for b in batches])

@pytest.mark.parametrize("device", DEVICES)
def test_same_seed_same_augmentation_as_official(images, device):
    a, b = official(images, 0), device_path(images, 0, device)
    per_image = (a - b).abs().mean((1, 2, 3))
    assert per_image.max() < 0.1 and per_image.mean() < 0.04, per_image  # resampling and rounding (1 grey level = 0.017)
    assert (a - device_path(images, 1, device)).abs().mean((1, 2, 3)).min() > 0.15  # another seed: other images

@pytest.mark.parametrize("device", DEVICES)
def test_output_distribution_matches_official(images, device):
    a, b = official(images, 5, repeat=20), device_path(images, 5, device, repeat=20)  # 220 augmented images each
    assert len(a) >= 200
    torch.testing.assert_close(a.mean((0, 2, 3)), b.mean((0, 2, 3)), atol=0.01, rtol=0)  # per-channel mean
    torch.testing.assert_close(a.std((0, 2, 3)), b.std((0, 2, 3)), atol=0.01, rtol=0)  # per-channel std
    assert abs(a.mean() - official(images, 6, repeat=20).mean()) > 0.001  # the seed matters: the check could fail

@pytest.mark.parametrize("device", DEVICES)
def test_evaluation_matches_official(images, device):
    off = official_transforms(train=False)
    a = torch.stack([off(Image.open(images.path(k)).convert("RGB")) for k in range(len(images))])
    b = device_path(images, 0, device, transform=FastEvalTransform())
    assert (a - b).abs().mean((1, 2, 3)).max() < 0.03

def test_workers_draw_the_official_random_stream(images):
    "Through a DataLoader with 2 workers, each worker draws exactly what the official pipeline's worker draws."
    loader = lambda ds, seed, **kw: DataLoader(ds, batch_size=4, num_workers=2, generator=torch.Generator().manual_seed(seed), **kw)
    a = torch.cat([x for x, _, _ in loader(images.with_transform(official_transforms(train=True)), 3)])
    items = JpegItems(images.with_transform(FastTrainTransform()))
    augment = DeviceAugment(items)
    b = torch.cat([augment(x) for x, _, _ in loader(items, 3, collate_fn=collate_jpegs)])
    other = torch.cat([augment(x) for x, _, _ in loader(items, 4, collate_fn=collate_jpegs)])
    gap = (a - b).abs().mean((1, 2, 3))
    assert gap.max() < 0.1 and gap.mean() < 0.04, gap
    assert (a - other).abs().mean((1, 2, 3)).min() > 0.15

def test_worker_crops_odd_files(images):
    items = JpegItems(images.with_transform(FastTrainTransform()), max_side=600)
    batch, labels, index = collate_jpegs([items[k] for k in range(len(items))])
    on_device = batch.params[:, COL["on_device"]].tolist()
    assert on_device == [1, 1, 0, 1, 0, 1, 1, 0, 1, 0, 0]  # 640 and 1200 wide, and the CMYK JPEG
    assert labels.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 3] and index.tolist() == list(range(11))

@pytest.mark.parametrize("device", DEVICES)
def test_make_batches_in_order_and_equal_to_direct_augment(images, device):
    ev = images.with_transform(FastEvalTransform())
    got = list(make_batches(ev, device, 4, num_workers=2, pipeline="device"))
    assert [b[2].tolist() for b in got] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10]]
    assert all(b[0].device.type == device for b in got)
    direct = device_path(images, 0, device, transform=FastEvalTransform())
    gap = (torch.cat([b[0].cpu() for b in got]) - direct).abs()  # other padded shapes: a rounding may flip one 8-bit level
    assert gap.max() < 0.02 and gap.mean() < 1e-3, (gap.max(), gap.mean())

@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_prefetcher_order_errors_and_early_stop():
    batches = [(torch.full((2, 3), float(k)), torch.tensor([k, k]), torch.tensor([k, k])) for k in range(6)]
    pf = Prefetcher(batches, lambda b: (b[0].cuda(non_blocking=True) * 2, *b[1:]), torch.device("cuda"))
    assert [b[0][0, 0].item() for b in pf] == [0, 2, 4, 6, 8, 10]
    it = iter(pf); next(it)
    assert [b[0][0, 0].item() for b in pf] == [0, 2, 4, 6, 8, 10]  # a new epoch stops the old thread first
    def bad(b): raise ValueError("cannot decode image x.jpg")
    with pytest.raises(ValueError, match="cannot decode image"): list(Prefetcher(batches, bad, torch.device("cuda")))

@pytest.mark.parametrize("device", DEVICES)
def test_engine_runs_both_stages_with_device_input(images, tmp_path, device):
    "OLTR stages 1 and 2 with device input (asked for on the CPU, the default on CUDA): training, centroid pass, val, test + open."
    root = images.root
    lines = (root / "split.txt").read_text().splitlines()[:10]
    for k in ("train", "val", "test"): (tmp_path / f"ImageNet_LT_{k}.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "ImageNet_LT_open.txt").write_text("\n".join(l.split()[0] + " -1" for l in lines[:3]) + "\n")
    ten = load_manifest("imagenet_lt").updated(num_classes=10)  # ImageNet-LT's pipeline, 10 classes of one image each
    data = build_image_folder(ten, root, tmp_path, size=32)
    pipeline = "device" if device == "cpu" else "auto"
    assert uses_device_input(data.train, torch.device(device), pipeline)
    quick = dict(data_root=str(root), split_dir=str(tmp_path), out_dir=str(tmp_path / "runs"), in_size=32, batch_size=4,
                 epochs=1, device=device, input_pipeline=pipeline, num_workers=0)
    r1 = train_stage(make_config("imagenet_lt", "oltr", 1, **quick), data, progress=False)
    r2 = train_stage(make_config("imagenet_lt", "oltr", 2, **quick), data, progress=False)
    m = json.loads(open(f"{r2['run_dir']}/eval/metrics.json").read())
    assert m["stage"] == 2 and 0 <= m["closed"]["top1"] <= 1 and m["open"]["auroc"] is not None
    assert torch.load(f"{r2['run_dir']}/best.pt", weights_only=False)["centroids"].abs().sum() > 0  # centroids from the device pass
