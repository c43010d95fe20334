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
