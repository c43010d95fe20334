"""The chapters are stored with their outputs, so a reader sees every value without running anything.

    python tests/chapter_outputs.py [NOTEBOOK ...]    # run the chapters (all by default) and store their outputs (`make outputs`)

Each chapter runs under nbdev's test runner (cells flagged slow, notest or gpu are skipped, as in CI) with a fresh runs
folder, and its outputs are written back; then every machine path in them (the project folder, the temporary folders, the
home folder) is replaced by a placeholder. `problems` says what a stored chapter lacks: a code cell that shows nothing, or an
output that still holds a machine path or a progress bar.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin"
SKIPPED = re.compile(r"^#\|\s*(export|default_exp|eval:\s*false|slow|notest|gpu|hide)\b", re.M)
MACHINE = re.compile(r"(/tmp/|/var/folders/|/root/|/home/\w+|site-packages|\d+(\.\d+)?it/s\]|s/it\])")


def chapters() -> list:
    "The numbered chapters of nbs/, in order."
    return sorted((ROOT / "nbs").glob("[0-9][0-9]_*.ipynb"))


def shows_something(cell: dict) -> bool:
    "True for a code cell that should show a value: it runs in CI and is more than exports, imports and flags."
    source = "".join(cell["source"])
    if cell["cell_type"] != "code" or SKIPPED.search(source): return False
    lines = [l for l in source.splitlines() if l.strip() and not l.lstrip().startswith("#")]
    return not all(l.startswith(("import ", "from ")) for l in lines)


def output_text(cell: dict) -> str:
    "Everything a code cell's stored outputs say, as text."
    parts = []
    for out in cell.get("outputs", []):
        parts += out.get("text", [])
        for kind, value in out.get("data", {}).items():
            if kind.startswith("text/"): parts += value if isinstance(value, list) else [value]
    return "".join(parts)


def problems(path: Path) -> list:
    "What a stored chapter lacks: cells that show nothing, outputs with a machine path or a progress bar."
    cells = json.loads(Path(path).read_text())["cells"]
    found = []
    for i, cell in enumerate(cells):
        if shows_something(cell) and not cell.get("outputs"):
            found.append(f"{path.name} cell {i}: shows nothing: {''.join(cell['source']).splitlines()[0][:80]!r}")
        if cell["cell_type"] == "code" and (m := MACHINE.search(output_text(cell))):
            found.append(f"{path.name} cell {i}: its output holds {m.group(0)!r}")
    return found


def placeholders() -> list:
    "(pattern of a machine path, its placeholder), the more specific first."
    tmp = re.escape(tempfile.gettempdir())
    return [(re.escape(str(ROOT)), "<project>"), (tmp + r"/(tmp|pytest-of-\w+/)[\w-]+", "<tmp>"), (tmp + "/", "<tmp>/"),
            (re.escape(str(Path.home())) + "/", "~/")]


def scrubbed(value, rules: list):
    "`value` (an output's text, a list of lines, or a mapping of them) with every machine path replaced."
    if isinstance(value, str):
        for pattern, placeholder in rules: value = re.sub(pattern, placeholder, value)
        return value
    if isinstance(value, list): return [scrubbed(v, rules) for v in value]
    if isinstance(value, dict): return {k: scrubbed(v, rules) for k, v in value.items()}
    return value


def scrub(path: Path):
    "Replace the machine paths in a chapter's stored outputs (never its code) by placeholders."
    nb, rules = json.loads(Path(path).read_text()), placeholders()
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            for key in ("text", "data"):
                if key in out: out[key] = scrubbed(out[key], rules)
    Path(path).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def store_outputs(path: Path):
    "Run one chapter as CI does and store its outputs, machine paths replaced."
    with tempfile.TemporaryDirectory() as runs:
        env = {**os.environ, "OLTR_RUNS_DIR": runs}
        subprocess.run([str(BIN / "nbdev-test"), str(path.relative_to(ROOT)), "--save"], cwd=ROOT, env=env, check=True)
    scrub(path)
    subprocess.run([str(BIN / "nbdev-clean"), "--fname", str(path)], cwd=ROOT, check=True)


if __name__ == "__main__":
    for nb in [ROOT / a for a in sys.argv[1:]] or chapters():
        print(f"{nb.name} ...", flush=True)
        store_outputs(nb)
    left = [p for nb in chapters() for p in problems(nb)]
    print("\n".join(left) if left else "every chapter shows its values")
