"""The package reads as a book: each module is one chapter of nbs/, and imports only the modules of earlier chapters."""
import ast
import re

from conftest import ROOT

NOTEBOOKS = sorted((ROOT / "nbs").glob("[0-9][0-9]_*.ipynb"))


def chapter_of_modules() -> dict:
    "module name -> chapter number, from each notebook's default_exp."
    out = {}
    for nb in NOTEBOOKS:
        found = re.search(r"#\| default_exp (\w+)", nb.read_text())
        assert found, f"{nb.name} has no default_exp"
        out[found.group(1)] = int(nb.name[:2])
    return out


def package_imports(module: str) -> set:
    "The oltr_nb modules a package module imports at its top level or inside functions."
    tree = ast.parse((ROOT / "oltr_nb" / f"{module}.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("oltr_nb."):
            names.add(node.module.split(".")[1])
        elif isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            names.add(node.module)
    return names


def test_every_module_is_one_chapter():
    chapters = chapter_of_modules()
    modules = {p.stem for p in (ROOT / "oltr_nb").glob("*.py")} - {"__init__", "_modidx"}
    assert modules == set(chapters), f"modules without a chapter: {modules - set(chapters)}; chapters without a module: {set(chapters) - modules}"
    assert len(set(chapters.values())) == len(chapters), "two notebooks share a chapter number"


def test_modules_import_only_earlier_chapters():
    chapters = chapter_of_modules()
    later = {m: sorted(i for i in package_imports(m) if chapters[i] >= chapters[m]) for m in chapters}
    assert not any(later.values()), f"imports of the same or a later chapter: { {m: v for m, v in later.items() if v} }"


RUN_FILES = {"config.json", "log.csv", "last.pt", "best.pt", ".lock", "metrics.json", "per_class.csv", "logits.npz",
             "identification.npz", "features.pt", "eval", "tb"}


def code_strings(module: str) -> list:
    "(line, text) of every string a module's code spells (f-string pieces included; docstrings left out)."
    tree = ast.parse((ROOT / "oltr_nb" / f"{module}.py").read_text())
    docs = {id(n.body[0].value) for n in ast.walk(tree) if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef))
            and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs]


def test_run_folder_names_are_spelled_in_one_module():
    "The names of a run folder's files appear in the run-folder chapter only; every other module asks it for a path."
    found = {m: [(line, s) for line, s in code_strings(m) if s in RUN_FILES or any(f in s for f in RUN_FILES - {"eval", "tb"})]
             for m in chapter_of_modules() if m != "run_folder"}
    assert not any(found.values()), {m: v for m, v in found.items() if v}


def imports_below(module: str) -> set:
    "Every package module that `module` imports, directly or through others."
    seen, todo = set(), [module]
    while todo:
        for m in package_imports(todo.pop()) - seen:
            seen.add(m); todo.append(m)
    return seen


def test_reports_do_not_import_the_training_stack():
    for report in ("report", "paper_report", "studies", "model_figures"):
        assert not imports_below(report) & {"experiments", "loop", "train"}, report


def test_no_module_is_over_600_lines():
    long = {p.name: n for p in (ROOT / "oltr_nb").glob("*.py") if p.name != "_modidx.py"
            and (n := len(p.read_text().splitlines())) > 600}
    assert not long, long
