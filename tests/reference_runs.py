"""The reference runs a refactoring must leave bit-identical: oltr, crt and openmax on digits_lt (seed 0, --deterministic,
full presets) and oltr killed with SIGKILL in stage 1 then resumed. Prints (or, with --write, stores) a digest of what each
run wrote: metrics.json without its provenance (times, commit), per_class.csv, and every array of logits.npz.

    python tests/reference_runs.py OUT_DIR [--write]    # --write: store the digests in tests/reference_runs.json
"""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
STORED = ROOT / "tests" / "reference_runs.json"
TRAIN = str(Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "oltr-train")
COMMON = ["--dataset", "digits_lt", "--seed", "0", "--deterministic"]


def eval_digest(stage_dir: Path) -> dict:
    "Digests of one stage's evaluation: metrics without provenance, per-class rows, each logits array."
    ev = stage_dir / "eval"
    metrics = json.loads((ev / "metrics.json").read_text())
    metrics.pop("provenance")
    arrays = np.load(ev / "logits.npz")
    sha = lambda b: hashlib.sha256(b).hexdigest()
    return dict(metrics=sha(json.dumps(metrics, sort_keys=True).encode()), per_class=sha((ev / "per_class.csv").read_bytes()),
                **{f"logits.{k}": sha(np.ascontiguousarray(arrays[k]).tobytes()) for k in sorted(arrays.files)})


def train(out: Path, method: str, *extra):
    subprocess.run([TRAIN, *COMMON, "--method", method, "--out-dir", str(out), *extra], check=True, capture_output=True)


def killed_and_resumed(out: Path):
    "oltr stage 1 killed with SIGKILL once its first checkpoint exists, then both stages with --resume."
    args = [TRAIN, *COMMON, "--method", "oltr", "--out-dir", str(out)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = out / "digits_lt" / "oltr" / "seed0" / "stage1" / "last.pt"
    while proc.poll() is None and not last.exists(): time.sleep(0.01)
    proc.send_signal(signal.SIGKILL); proc.wait()
    subprocess.run([*args, "--resume"], check=True, capture_output=True)


def reference(out: Path) -> dict:
    "Run every reference run under `out` and digest what each stage wrote."
    for method in ("oltr", "crt", "openmax"): train(out / "runs", method)
    killed_and_resumed(out / "killed")
    found = {f"{m}/stage{s}": eval_digest(out / "runs" / "digits_lt" / m / "seed0" / f"stage{s}")
             for m in ("oltr", "crt", "openmax") for s in (1, 2) if (out / "runs" / "digits_lt" / m / "seed0" / f"stage{s}" / "eval").exists()}
    found.update({f"killed-resumed oltr/stage{s}": eval_digest(out / "killed" / "digits_lt" / "oltr" / "seed0" / f"stage{s}") for s in (1, 2)})
    return found


if __name__ == "__main__":
    found = reference(Path(sys.argv[1]))
    if "--write" in sys.argv: STORED.write_text(json.dumps(found, indent=1) + "\n")
    stored = json.loads(STORED.read_text()) if STORED.exists() else {}
    print(json.dumps(found, indent=1))
    print("identical to tests/reference_runs.json" if found == stored else "DIFFERENT from tests/reference_runs.json")
