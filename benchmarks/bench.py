"""Throughput of oltr_nb against an official-style baseline: data loading, training step, end to end, evaluation.

Run from the project root:  .venv/bin/python benchmarks/bench.py [--quick]
It generates its own JPEGs under benchmarks/_data/ (git-ignored), prints a table last and
appends it, with the machine, the command and the commit, to benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse, math, os, platform, shlex, subprocess, sys, tempfile, time, warnings
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from oltr_nb.config import make_config
from oltr_nb.data import ImageListDataset, RawJpegList, build_data
from oltr_nb.evaluation import predict
from oltr_nb.images import (BatchJpegAugment, FastEvalTransform, FastTrainTransform, collate_raw,
                            official_transforms)
from oltr_nb.loop import stage_losses, train_stage
from oltr_nb.methods import make_criterion
from oltr_nb.losses import DiscCentroidsLoss
from oltr_nb.models import build_model, compute_centroids
from oltr_nb.speed import training_flops, write_synthetic_jpegs
from oltr_nb.stage import make_optimizers

SPLITS = ("train", "val", "test", "open")

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes: about 3 minutes on 2 CPU cores")
    p.add_argument("--images", type=int, help="generated training JPEGs (default 2000, quick 1000; at least 1000)")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="DataLoader workers for both pipelines")
    p.add_argument("--batch", type=int, help="training batch (default 128 on CUDA, 16 on CPU)")
    p.add_argument("--compile", action="store_true", help="also time torch.compile'd training steps")
    p.add_argument("--peak-tflops", type=float, default=None, help="the card's bf16 dense rate for the physical-limit line")
    p.add_argument("--no-append", action="store_true", help="print only; do not append to RESULTS.md")
    return p.parse_args(argv)

# ---------------------------------------------------------------- data
def make_data(n: int, eval_n: int) -> Path:
    "Generated JPEGs and ImageNet-LT-named split files under benchmarks/_data/n<n>; reused when present."
    root = ROOT / "benchmarks" / "_data" / f"n{n}_e{eval_n}"
    done = root / "DONE"
    if done.exists(): return root
    t = time.time()
    lines = write_synthetic_jpegs(root, n, num_classes=1000, seed=0)
    held = write_synthetic_jpegs(root / "held", 2 * eval_n, num_classes=1000, seed=1)
    held = [f"held/{l}" for l in held]
    files = dict(train=lines, val=held[:eval_n], test=held[eval_n:],
                 open=[f"{l.rsplit(' ', 1)[0]} -1" for l in held[: max(eval_n // 4, 1)]])
    for k, v in files.items(): (root / f"ImageNet_LT_{k}.txt").write_text("\n".join(v) + "\n")
    (root / "e2e").mkdir(exist_ok=True)  # same training list, 16-image val/test/open: the epoch timing is training
    for k, v in files.items(): (root / "e2e" / f"ImageNet_LT_{k}.txt").write_text("\n".join(v if k == "train" else v[:16]) + "\n")
    done.write_text(f"generated {n} + {2 * eval_n} JPEGs in {time.time() - t:.1f} s\n")
    return root

def loader_rate(dataset, batch: int, workers: int, limit: int, finish=None) -> float:
    "Images/s of one pass over the first `limit` items, timed from the first batch (worker start-up excluded)."
    ds = Subset(dataset, range(min(limit, len(dataset))))
    kw = dict(collate_fn=collate_raw) if isinstance(dataset, RawJpegList) else {}
    loader = DataLoader(ds, batch_size=batch, num_workers=workers, drop_last=True, **kw)
    it, n = iter(loader), 0
    first = next(it)
    if finish: finish(first[0])
    t = time.perf_counter()
    for x, *_ in it:
        out = finish(x) if finish else x
        n += len(out)
    if torch.cuda.is_available(): torch.cuda.synchronize()
    return n / (time.perf_counter() - t)

def bench_loading(root: Path, args, n: int, device) -> list:
    src = ImageListDataset(root / "ImageNet_LT_train.txt", root, 1000)
    base = src.with_transform(official_transforms(train=True))
    fast = src.with_transform(FastTrainTransform())
    rows, batch = [], 32
    torch.manual_seed(0)
    b = f = 0.0
    for _ in range(1 if args.quick else 2):  # alternate, keep the best of each: the machine is shared
        b = max(b, loader_rate(base, batch, args.workers, n))
        f = max(f, loader_rate(fast, batch, args.workers, n))
    rows.append(("1 data loading (train aug.)", f"PIL official, {args.workers} workers", b, f"fast CPU pipeline, {args.workers} workers", f))
    if device.type == "cuda":
        aug = BatchJpegAugment(224, device, channels_last=True)
        g = loader_rate(RawJpegList(src), 128, args.workers, n, finish=aug)
        rows.append(("1 data loading (train aug.)", "PIL official", b, f"nvJPEG batch decode + GPU aug., {args.workers} workers", g))
    return rows

# ---------------------------------------------------------------- training step
def stage_model(stage: int):
    if stage == 1: return build_model("resnet10", 1000, classifier="dot")
    return build_model("resnet10", 1000, classifier="meta", attention=True, fc_add=True)

def step_runner(stage: int, batch: int, device, channels_last=False, amp=False, compile_=False):
    "A closure doing one optimisation step on tensors already on the device (the engine's losses and optimizers)."
    torch.manual_seed(0)
    cfg = make_config("imagenet_lt", "oltr", stage, batch_size=batch)
    model = stage_model(stage).to(device)
    centroid_loss = None
    if stage == 2:
        centroids = torch.randn(1000, 512, device=device)
        model.set_centroids(centroids)
        centroid_loss = DiscCentroidsLoss(1000, 512).to(device)
        centroid_loss.set_centroids(centroids)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opts, _ = make_optimizers(cfg, model, centroid_loss)
    criterion = make_criterion(cfg.method, torch.ones(1000), 1000, 512).to(device)
    run = torch.compile(model) if compile_ else model
    x = torch.randn(batch, 3, 224, 224, device=device).contiguous(memory_format=fmt)
    y = torch.randint(0, 1000, (batch,), device=device)
    ctx = lambda: torch.autocast(device.type, dtype=torch.bfloat16) if amp else torch.autocast(device.type, enabled=False)
    def one():
        with ctx(): out = run(x)
        loss = sum(stage_losses(cfg, out, y, criterion, centroid_loss).values())
        for o in opts.values(): o.zero_grad(set_to_none=True)
        loss.backward()
        for o in opts.values(): o.step()
        return loss
    for _ in range(3 if compile_ else 2): one()
    return one

def step_times(batch: int, device, steps: int, **variant) -> tuple:
    "Seconds per step of stage 1 and stage 2, measured alternately so that both see the same machine load."
    runs = [step_runner(s, batch, device, **variant) for s in (1, 2)]
    if device.type == "cuda":  # asynchronous: time whole runs, one sync at the end of each
        out = []
        for one in runs:
            torch.cuda.synchronize(); t = time.perf_counter()
            for _ in range(steps): loss = one()
            loss.detach().item(); out.append((time.perf_counter() - t) / steps)
        return tuple(out)
    best = [math.inf, math.inf]  # CPU: best single step of each, interleaved
    for _ in range(steps):
        for k, one in enumerate(runs):
            t = time.perf_counter(); one(); best[k] = min(best[k], time.perf_counter() - t)
    return tuple(best)

def bench_step(args, batch: int, steps: int, device) -> tuple:
    cuda = device.type == "cuda"
    variants = [("fp32 eager", {}), ("channels_last", dict(channels_last=True))]
    variants.append(("bf16 autocast + channels_last", dict(channels_last=True, amp=True)))
    if args.compile: variants.append(("bf16 + channels_last + compile", dict(channels_last=True, amp=True, compile_=True)))
    times = {}
    for name, kw in variants: times[(1, name)], times[(2, name)] = step_times(batch, device, steps, **kw)
    default = "bf16 autocast + channels_last" if cuda else "fp32 eager"  # what train_stage does on this device
    rows = []
    for s in (1, 2):
        base = batch / times[(s, "fp32 eager")]
        for name, _ in variants[1:]:
            label = name + (" (engine default)" if name == default else "")
            rows.append((f"2 train step, stage {s}, batch {batch}", "fp32 eager", base, label, batch / times[(s, name)]))
    ratios = {name: times[(2, name)] / times[(1, name)] for name, _ in variants}
    return rows, ratios, default, times

# ---------------------------------------------------------------- end to end and evaluation
def bench_end_to_end(root: Path, args, batch: int, steps: int, device) -> list:
    "Stage 1 through train_stage: images/s of the epoch (log.csv), baseline vs fast data pipeline."
    rates = {}
    for name, fast in (("official PIL", False), ("fast", True)):
        d = build_data("imagenet_lt", data_root=root, split_dir=root / "e2e", fast=fast)
        with tempfile.TemporaryDirectory() as out:
            cfg = make_config("imagenet_lt", "oltr", 1, data_root=str(root), out_dir=out, batch_size=batch,
                              num_workers=args.workers, epochs=1, max_steps_per_epoch=steps, device=device.type,
                              log_every=max(steps, 1))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = train_stage(cfg, d, progress=False)
            log = (Path(res["run_dir"]) / "log.csv").read_text().splitlines()
            head, row = log[0].split(","), log[1].split(",")
            rates[name] = float(row[head.index("images_per_s")])
    return [(f"3 end to end, stage 1 ({steps} steps x {batch})", "official PIL", rates["official PIL"], "fast pipeline", rates["fast"])]

def bench_eval(root: Path, args, batch: int, n: int, device) -> list:
    "Centroid pass and test pass (train_stage's own functions), official eval transform vs FastEvalTransform."
    src = ImageListDataset(root / "ImageNet_LT_train.txt", root, 1000)
    sub = lambda d: Subset(d, range(min(n, len(d))))
    model = stage_model(2).to(device)
    cfg = make_config("imagenet_lt", "oltr", 2, batch_size=batch, num_workers=args.workers, device=device.type)
    rows = []
    for kind in ("centroids", "test"):
        rate = {}
        for name, ds in (("official", src.with_transform(official_transforms(train=False))), ("fast", src.with_transform(FastEvalTransform()))):
            t = time.perf_counter()
            if kind == "centroids":
                loader = DataLoader(sub(ds), batch_size=batch, num_workers=args.workers)
                compute_centroids(model, loader, num_classes=1000, device=device)
            else:
                predict(model, sub(ds), cfg, device)
            rate[name] = min(n, len(ds)) / (time.perf_counter() - t)
        rows.append((f"4 eval: {'centroid pass' if kind == 'centroids' else 'test pass'}", "official Resize+CenterCrop", rate["official"],
                     "FastEvalTransform", rate["fast"]))
    return rows

# ---------------------------------------------------------------- report
def machine(device) -> str:
    cpu = platform.processor() or "?"
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration): pass
    gpu = f"{torch.cuda.get_device_name(0)} x {torch.cuda.device_count()}" if device.type == "cuda" else "none"
    return f"CPU {cpu}, {os.cpu_count()} cores; torch {torch.__version__}; GPU: {gpu}"

def command() -> str:
    exe = Path(sys.executable)
    exe = os.path.relpath(exe, ROOT) if ROOT in exe.parents else str(exe)
    return f"{exe} {shlex.join(sys.argv)}"

def commit() -> str:
    try: return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip() or "?"
    except OSError: return "?"

def table(rows) -> str:
    out = ["| measurement | baseline | images/s | project | images/s | ratio |", "|---|---|---:|---|---:|---:|"]
    for what, bname, b, pname, p in rows:
        out.append(f"| {what} | {bname} | {b:.1f} | {pname} | {p:.1f} | {p / b:.2f}x |")
    return "\n".join(out)

def main(argv=None):
    args = parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cuda = device.type == "cuda"
    n = max(args.images or (1000 if args.quick else 2000), 1000)  # every one of the 1,000 classes needs an image
    batch = args.batch or (128 if cuda else 16)
    steps = (5 if args.quick else 20) if cuda else (3 if args.quick else 5)
    e2e_steps = (20 if args.quick else 50) if cuda else (3 if args.quick else 10)
    eval_n = (512 if cuda else 48) if args.quick else (2048 if cuda else 192)
    started = time.time()
    root = make_data(n, eval_n)
    print(f"data: {root} ({(root / 'DONE').read_text().strip()})", flush=True)
    rows = bench_loading(root, args, n, device); print(table(rows), flush=True)
    step_rows, ratios, default, _ = bench_step(args, batch, steps, device); print(table(step_rows), flush=True)
    e2e_rows = bench_end_to_end(root, args, batch, e2e_steps, device); print(table(e2e_rows), flush=True)
    eval_rows = bench_eval(root, args, batch if cuda else 32, eval_n, device)
    flops = {s: training_flops(stage_model(s).eval()) for s in (1, 2)}
    all_rows = rows + step_rows + e2e_rows + eval_rows
    lines = [f"## {'quick' if args.quick else 'full'} run, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC", "",
             f"- machine: {machine(device)}", f"- command: `{command()}`",
             f"- commit: `{commit()}`",
             f"- settings: {n} training JPEGs, {args.workers} workers, batch {batch}, {steps} timed steps, "
             f"{e2e_steps} end-to-end steps, {eval_n} eval images; total {time.time() - started:.0f} s", "",
             table(all_rows), "",
             "- stage-2 / stage-1 step time: " + ", ".join(f"{k} {v:.3f}" for k, v in ratios.items()) + f" (engine default here: {default})",
             f"- training FLOPs per image (forward x 3, torch.utils.flop_counter): stage 1 {flops[1] / 1e9:.2f} GFLOP, stage 2 {flops[2] / 1e9:.2f} GFLOP"]
    if args.peak_tflops:
        lines.append(f"- physical limit at {args.peak_tflops:g} bf16 TFLOP/s: {args.peak_tflops * 1e12 / flops[1]:,.0f} images/s (stage 1)")
    report = "\n".join(lines) + "\n"
    if not args.no_append:
        with open(ROOT / "benchmarks" / "RESULTS.md", "a") as f: f.write("\n" + report)
    print("\n" + report)

if __name__ == "__main__":
    main()
