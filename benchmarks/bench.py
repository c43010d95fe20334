"""Throughput of oltr_nb against an official-style baseline: data loading, training step, end to end, evaluation.

Run from the project root:  .venv/bin/python benchmarks/bench.py [--quick]
It generates its own JPEGs under benchmarks/_data/ (git-ignored; a process pool over the cores), prints each
table as it goes and appends the section, with the machine, the command and the commit, to benchmarks/RESULTS.md.
Beside the rates it prints the wall time they imply for the full OLTR recipes and, on CUDA, the peak GPU memory
per stage; a CUDA section ends with the line `end-to-end / step-only: stage 1 0.NN, stage 2 0.NN (CARD)`.
`--steps-only` measures the training step alone (with `--compile` / `--cuda-graphs`: against eager).
"""
from __future__ import annotations

import argparse, math, os, platform, shlex, subprocess, sys, tempfile, time, warnings
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Subset

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from oltr_nb.config import make_config
from oltr_nb.data import build_data
from oltr_nb.split_files import ImageListDataset
from oltr_nb.evaluation import predict
from oltr_nb.gpu_input import DeviceAugment, collate_jpegs, default_num_workers, device_items, make_batches
from oltr_nb.images import FastEvalTransform, FastTrainTransform, official_transforms
from oltr_nb.loop import stage_losses, step_model, train_stage
from oltr_nb.methods import make_criterion
from oltr_nb.losses import DiscCentroidsLoss
from oltr_nb.models import build_model, compute_centroids
from oltr_nb.benchmarking import training_flops, write_synthetic_jpegs
from oltr_nb.stage import make_optimizers

RECIPES = {"ImageNet-LT": (115_846, 30, 60), "Places-LT": (62_500, 30, 30)}  # training images, OLTR stage-1 and stage-2 epochs
ENGINE_DEFAULT = {"cuda": "bf16 autocast + channels_last", "cpu": "fp32 eager"}  # what train_stage runs on each device

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes: a few minutes on 2 CPU cores")
    p.add_argument("--images", type=int, help="generated training JPEGs (default 2000, quick 1000; at least 1000)")
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: the engine's default for image lists)")
    p.add_argument("--batch", type=int, help="training batch (default 128 on CUDA, 16 on CPU)")
    p.add_argument("--compile", action="store_true", help="also time torch.compile'd training steps")
    p.add_argument("--cuda-graphs", action="store_true", help="CUDA: also time steps replayed as CUDA graphs (torch.compile reduce-overhead)")
    p.add_argument("--steps-only", action="store_true", help="only the training-step rows (no JPEGs, no end to end)")
    p.add_argument("--e2e-repeat", type=int, help="end to end: the training list repeated (default 8 on CUDA, 1 on CPU)")
    p.add_argument("--peak-tflops", type=float, default=None, help="the card's bf16 dense rate for the physical-limit line")
    p.add_argument("--no-append", action="store_true", help="print only; do not append to RESULTS.md")
    return p.parse_args(argv)

# ---------------------------------------------------------------- data
def write_list(path: Path, lines: list):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")

def make_data(n: int, eval_n: int, repeat: int) -> Path:
    "Generated JPEGs and ImageNet-LT-named split files under benchmarks/_data/n<n>_e<eval_n>; reused when present."
    root = ROOT / "benchmarks" / "_data" / f"n{n}_e{eval_n}"
    done = root / "DONE"
    if not done.exists():
        t, cores = time.time(), len(os.sched_getaffinity(0))
        lines = write_synthetic_jpegs(root, n, num_classes=1000, seed=0, workers=cores)
        held = write_synthetic_jpegs(root / "held", 2 * eval_n, num_classes=1000, seed=1, workers=cores)
        held = [f"held/{l}" for l in held]
        files = dict(train=lines, val=held[:eval_n], test=held[eval_n:],
                     open=[f"{l.rsplit(' ', 1)[0]} -1" for l in held[: max(eval_n // 4, 1)]])
        for k, v in files.items(): write_list(root / f"ImageNet_LT_{k}.txt", v)
        for k, v in files.items(): write_list(root / "e2e" / f"ImageNet_LT_{k}.txt", v if k == "train" else v[:16])  # 16-image val: the epoch is training
        done.write_text(f"generated {n} + {2 * eval_n} JPEGs in {time.time() - t:.1f} s with {cores} processes\n")
    if repeat > 1 and not (root / f"e2e_x{repeat}" / "ImageNet_LT_train.txt").exists():  # a longer epoch over the same files
        for k in ("train", "val", "test", "open"):
            v = (root / "e2e" / f"ImageNet_LT_{k}.txt").read_text().splitlines()
            write_list(root / f"e2e_x{repeat}" / f"ImageNet_LT_{k}.txt", v * repeat if k == "train" else v)
    return root

def loader_rate(dataset, batch: int, workers: int, limit: int, finish=None, collate=None) -> float:
    "Images/s of one pass over the first `limit` items, timed from the first batch (worker start-up excluded)."
    ds = Subset(dataset, range(min(limit, len(dataset))))
    loader = DataLoader(ds, batch_size=batch, num_workers=workers, drop_last=True, pin_memory=torch.cuda.is_available(),
                        **(dict(collate_fn=collate) if collate else {}))
    it, n = iter(loader), 0
    first = next(it)
    if finish: finish(first[0])
    t = time.perf_counter()
    for x, *_ in it:
        out = finish(x) if finish else x
        n += len(out)
    if torch.cuda.is_available(): torch.cuda.synchronize()
    return n / (time.perf_counter() - t)

def bench_loading(root: Path, args, n: int, device, workers: int) -> list:
    src = ImageListDataset(root / "ImageNet_LT_train.txt", root, 1000)
    base = src.with_transform(official_transforms(train=True))
    fast = src.with_transform(FastTrainTransform())
    rows, batch = [], 32
    torch.manual_seed(0)
    b = f = 0.0
    for _ in range(1 if args.quick else 2):  # alternate, keep the best of each: the machine is shared
        b = max(b, loader_rate(base, batch, workers, n))
        f = max(f, loader_rate(fast, batch, workers, n))
    rows.append(("1 data loading (train aug.)", f"PIL official, {workers} workers", b, f"fast CPU pipeline, {workers} workers", f))
    cuda = device.type == "cuda"
    items = device_items(fast)
    augment = DeviceAugment(items, device, channels_last=cuda)
    g = loader_rate(items, 128 if cuda else batch, workers, n if cuda else 4 * batch, finish=augment, collate=collate_jpegs)
    where = "nvJPEG" if cuda else "libjpeg (CPU: not the engine's CPU path)"
    rows.append(("1 data loading (train aug.)", "PIL official", b, f"device input: {where} + batched resample, {workers} workers", g))
    return rows

# ---------------------------------------------------------------- training step
def stage_model(stage: int):
    if stage == 1: return build_model("resnet10", 1000, classifier="dot")
    return build_model("resnet10", 1000, classifier="meta", attention=True, fc_add=True)

def step_runner(stage: int, batch: int, device, channels_last=False, amp=False, compile_=False, cuda_graphs=False):
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
    run = step_model(model, replace(cfg, compile=compile_, cuda_graphs=cuda_graphs), device)
    x = torch.randn(batch, 3, 224, 224, device=device).contiguous(memory_format=fmt)
    y = torch.randint(0, 1000, (batch,), device=device)
    ctx = lambda: torch.autocast(device.type, dtype=torch.bfloat16) if amp else torch.autocast(device.type, enabled=False)
    def one():
        if cuda_graphs: torch.compiler.cudagraph_mark_step_begin()
        with ctx(): out = run(x)
        loss = sum(stage_losses(cfg, out, y, criterion, centroid_loss).values())
        for o in opts.values(): o.zero_grad(set_to_none=True)
        loss.backward()
        for o in opts.values(): o.step()
        return loss
    for _ in range(3 if compile_ or cuda_graphs else 2): one()
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

def step_variants(args, device) -> list:
    cuda = device.type == "cuda"
    variants = [("fp32 eager", {}), ("channels_last", dict(channels_last=True)),
                ("bf16 autocast + channels_last", dict(channels_last=True, amp=True))]
    default = dict(channels_last=True, amp=True) if cuda else {}
    if args.compile: variants.append((f"{ENGINE_DEFAULT[device.type]} + compile", dict(default, compile_=True)))
    if args.cuda_graphs and cuda: variants.append((f"{ENGINE_DEFAULT['cuda']} + CUDA graphs", dict(default, cuda_graphs=True)))
    return variants

def bench_step(args, batch: int, steps: int, device) -> tuple:
    variants = step_variants(args, device)
    times = {}
    for name, kw in variants:
        times[(1, name)], times[(2, name)] = step_times(batch, device, steps, **kw)
        print(f"  {name}: {batch / times[(1, name)]:,.1f} / {batch / times[(2, name)]:,.1f} images/s (stages 1 / 2)", flush=True)
    default = ENGINE_DEFAULT[device.type]
    rows = []
    for s in (1, 2):
        base = batch / times[(s, "fp32 eager")]
        for name, _ in variants[1:]:
            label = name + (" (engine default)" if name == default else "")
            rows.append((f"2 train step, stage {s}, batch {batch}", "fp32 eager", base, label, batch / times[(s, name)]))
    ratios = {name: times[(2, name)] / times[(1, name)] for name, _ in variants}
    return rows, ratios, default, times

@torch.no_grad()
def forward_rate(batch: int, device, steps: int) -> float:
    "Images/s of the stage-2 model's forward pass on device tensors, with the engine's evaluation settings."
    cuda = device.type == "cuda"
    model = stage_model(2).to(device).eval()
    model.set_centroids(torch.randn(1000, 512, device=device))
    fmt = torch.channels_last if cuda else torch.contiguous_format
    model = model.to(memory_format=fmt)
    x = torch.randn(batch, 3, 224, 224, device=device).contiguous(memory_format=fmt)
    ctx = lambda: torch.autocast("cuda", dtype=torch.bfloat16) if cuda else torch.autocast("cpu", enabled=False)
    for _ in range(2):
        with ctx(): model(x)
    if cuda: torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        with ctx(): out = model(x)
    out["logits"].float().sum().item()
    return steps * batch / (time.perf_counter() - t)

# ---------------------------------------------------------------- end to end and evaluation
def e2e_run(root: Path, split: str, stage: int, out: str, batch: int, steps: int, epochs: int, device, workers,
            official: bool, init_from=None) -> tuple:
    "One stage through train_stage: (images/s of its last epoch from log.csv, peak GPU GiB, run folder)."
    d = build_data("imagenet_lt", data_root=root, split_dir=root / split, fast=not official)
    style = dict(amp="none", channels_last=False, input_pipeline="workers") if official else {}
    cfg = make_config("imagenet_lt", "oltr", stage, data_root=str(root), out_dir=out, batch_size=batch, num_workers=workers,
                      epochs=epochs, max_steps_per_epoch=steps, device=device.type, log_every=max(steps, 1),
                      init_from=init_from, **style)
    if device.type == "cuda": torch.cuda.reset_peak_memory_stats()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = train_stage(cfg, d, progress=False)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
    log = (Path(res["run_dir"]) / "log.csv").read_text().splitlines()
    head, row = log[0].split(","), log[-1].split(",")
    return float(row[head.index("images_per_s")]), peak, Path(res["run_dir"])

def bench_end_to_end(root: Path, args, batch: int, steps: int, epochs: int, device, workers) -> tuple:
    "Stages 1 and 2 (class-aware sampler) through train_stage: official-style (PIL, fp32 eager) vs the engine's defaults."
    cuda, repeat = device.type == "cuda", args.e2e_repeat
    rates, peaks, rows = {}, {}, []
    with tempfile.TemporaryDirectory() as out:
        for name, official, split, n_steps in (("official", True, "e2e", min(steps, 30) if cuda else steps),
                                               ("project", False, f"e2e_x{repeat}" if repeat > 1 else "e2e", steps)):
            r1, peaks[(name, 1)], run1 = e2e_run(root, split, 1, f"{out}/{name}", batch, n_steps, epochs, device, workers, official)
            r2, peaks[(name, 2)], _ = e2e_run(root, split, 2, f"{out}/{name}", batch, n_steps, epochs, device, workers, official,
                                              init_from=str(run1 / "best.pt"))
            rates[(name, 1)], rates[(name, 2)] = r1, r2
    for s in (1, 2):
        rows.append((f"3 end to end, stage {s}{' (class-aware)' if s == 2 else ''}", "official-style: PIL, fp32 eager",
                     rates[("official", s)], "engine defaults", rates[("project", s)]))
    return rows, rates, peaks

def eval_rate(kind: str, model, ds, cfg, device, n: int) -> float:
    "Images/s of the centroid pass or the test pass over the first n items, through the engine's own functions."
    sub = Subset(ds, range(min(n, len(ds))))
    t = time.perf_counter()
    if kind == "centroids":
        batches = make_batches(sub, device, cfg.batch_size, num_workers=cfg.num_workers, pipeline=cfg.input_pipeline)
        compute_centroids(model, batches, num_classes=1000, device=device)
    else:
        predict(model, sub, cfg, device)
    if device.type == "cuda": torch.cuda.synchronize()
    return len(sub) / (time.perf_counter() - t)

def bench_eval(root: Path, args, batch: int, n: int, device, workers) -> list:
    "Centroid pass and test pass: official Resize+CenterCrop through the workers vs the engine's defaults."
    src = ImageListDataset(root / "ImageNet_LT_train.txt", root, 1000)
    model = stage_model(2).to(device)
    cfg = make_config("imagenet_lt", "oltr", 2, batch_size=batch, num_workers=workers, device=device.type)
    official = make_config("imagenet_lt", "oltr", 2, batch_size=batch, num_workers=workers, device=device.type, input_pipeline="workers")
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # most of the 1,000 classes have no image in the centroid pass
        for kind in ("centroids", "test"):
            b = eval_rate(kind, model, src.with_transform(official_transforms(train=False)), official, device, n)
            p = eval_rate(kind, model, src.with_transform(FastEvalTransform()), cfg, device, n)
            rows.append((f"4 eval: {'centroid pass' if kind == 'centroids' else 'test pass'}", "official Resize+CenterCrop",
                         b, "engine defaults", p))
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
    "HEAD, and whether the working tree differs from it."
    git = lambda *a: subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    try: head, dirty = git("rev-parse", "HEAD") or "?", git("status", "--porcelain", "--untracked-files=no")
    except OSError: return "?"
    return f"{head}{' + uncommitted changes' if dirty else ''}"

def table(rows) -> str:
    out = ["| measurement | baseline | images/s | project | images/s | ratio |", "|---|---|---:|---|---:|---:|"]
    for what, bname, b, pname, p in rows:
        out.append(f"| {what} | {bname} | {b:.1f} | {pname} | {p:.1f} | {p / b:.2f}x |")
    return "\n".join(out)

def hours(r1: float, r2: float, recipe: str) -> float:
    "Hours of a full OLTR recipe (both stages, training images only) at r1 and r2 images/s."
    n, e1, e2 = RECIPES[recipe]
    return (e1 * n / r1 + e2 * n / r2) / 3600

def wall_time_lines(rates: dict, step: dict) -> list:
    "What the rates imply for the full recipes: epochs x training images / rate, both stages (val passes not counted)."
    out = ["| at these rates (ResNet-10, 224 px) | stage 1 images/s | stage 2 images/s | ImageNet-LT OLTR (30 + 60 epochs x 115,846) | Places-LT OLTR (30 + 30 epochs x 62,500) |",
           "|---|---:|---:|---:|---:|"]
    for label, (r1, r2) in (("official-style, end to end", (rates[("official", 1)], rates[("official", 2)])),
                            ("project, end to end", (rates[("project", 1)], rates[("project", 2)])),
                            ("project, step only (the model's own rate)", (step[1], step[2]))):
        out.append(f"| {label} | {r1:,.0f} | {r2:,.0f} | {hours(r1, r2, 'ImageNet-LT'):.2f} h | {hours(r1, r2, 'Places-LT'):.2f} h |")
    return out + ["", "(Places-LT trains ResNet-152, whose step is several times slower: its column is what the input "
                      "pipeline and a ResNet-10-sized step allow, a lower bound on its real wall time.)"]

def main(argv=None):
    args = parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cuda = device.type == "cuda"
    if cuda: torch.backends.cudnn.benchmark = True
    n = max(args.images or (1000 if args.quick else 2000), 1000)  # every one of the 1,000 classes needs an image
    batch = args.batch or (128 if cuda else 16)
    steps = (5 if args.quick else 20) if cuda else (3 if args.quick else 5)
    args.e2e_repeat = args.e2e_repeat or (8 if cuda else 1)
    e2e_steps = (n * args.e2e_repeat // batch if cuda else (3 if args.quick else 10))
    e2e_epochs = 2 if cuda else 1  # CUDA: the second epoch's rate (the first one warms up)
    eval_n = (512 if cuda else 48) if args.quick else (2048 if cuda else 192)
    started = time.time()
    lines = [f"## {'steps-only' if args.steps_only else 'quick' if args.quick else 'full'} run, "
             f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC", "", f"- machine: {machine(device)}", f"- command: `{command()}`",
             f"- commit: `{commit()}`"]
    step_rows, ratios, default, times = bench_step(args, batch, steps, device); print(table(step_rows), flush=True)
    step = {s: batch / times[(s, default)] for s in (1, 2)}
    if args.steps_only:
        lines += [f"- settings: batch {batch}, {steps} timed steps; total {time.time() - started:.0f} s", "", table(step_rows), "",
                  "- stage-2 / stage-1 step time: " + ", ".join(f"{k} {v:.3f}" for k, v in ratios.items())]
        return finish(args, lines)
    root = make_data(n, eval_n, args.e2e_repeat)
    print(f"data: {root} ({(root / 'DONE').read_text().strip()})", flush=True)
    workers = args.workers if args.workers is not None else default_num_workers(ImageListDataset(root / "ImageNet_LT_val.txt", root, 1000))
    rows = bench_loading(root, args, n, device, workers); print(table(rows), flush=True)
    e2e_rows, rates, peaks = bench_end_to_end(root, args, batch, e2e_steps, e2e_epochs, device, workers); print(table(e2e_rows), flush=True)
    eval_rows = bench_eval(root, args, batch if cuda else 32, eval_n, device, workers)
    fwd = forward_rate(batch if cuda else 32, device, steps)
    flops = {s: training_flops(stage_model(s).eval()) for s in (1, 2)}
    lines += [f"- settings: {n} training JPEGs, {workers} workers, batch {batch}, {steps} timed steps, "
              f"end to end {e2e_epochs} epoch(s) of {e2e_steps} steps (project; official-style at most {min(e2e_steps, 30) if cuda else e2e_steps}), "
              f"{eval_n} eval images; total {time.time() - started:.0f} s", "",
              table(rows + step_rows + e2e_rows + eval_rows), "",
              "- stage-2 / stage-1 step time: " + ", ".join(f"{k} {v:.3f}" for k, v in ratios.items()) + f" (engine default here: {default})",
              f"- end to end / step only ({default}): stage 1 {rates[('project', 1)] / step[1]:.2f}, stage 2 {rates[('project', 2)] / step[2]:.2f}",
              f"- centroid pass / test pass against the forward-only rate ({fwd:,.0f} images/s): "
              f"{eval_rows[0][4] / fwd:.2f} / {eval_rows[1][4] / fwd:.2f}",
              f"- training FLOPs per image (forward x 3, torch.utils.flop_counter): stage 1 {flops[1] / 1e9:.2f} GFLOP, stage 2 {flops[2] / 1e9:.2f} GFLOP"]
    if cuda:
        lines.append("- peak GPU memory (torch.cuda.max_memory_allocated): " + ", ".join(
            f"{who} stage {s} {peaks[(who, s)]:.1f} GiB" for who in ("official", "project") for s in (1, 2)))
    if args.peak_tflops:
        lines.append(f"- physical limit at {args.peak_tflops:g} bf16 TFLOP/s: {args.peak_tflops * 1e12 / flops[1]:,.0f} images/s (stage 1)")
    lines += ["", *wall_time_lines(rates, step)]
    if cuda:
        lines += ["", f"end-to-end / step-only: stage 1 {rates[('project', 1)] / step[1]:.2f}, stage 2 {rates[('project', 2)] / step[2]:.2f} "
                      f"({torch.cuda.get_device_name(0)})"]
    finish(args, lines)

def finish(args, lines: list):
    "Print the section and append it to RESULTS.md (unless --no-append)."
    report = "\n".join(lines) + "\n"
    if not args.no_append:
        with open(ROOT / "benchmarks" / "RESULTS.md", "a") as f: f.write("\n" + report)
    print("\n" + report)

if __name__ == "__main__":
    main()
