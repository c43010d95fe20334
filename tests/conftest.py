"""Shared pytest set-up: the project root, the `--runslow` switch for long tests, and one temporary folder for everything a test writes."""
import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin"


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="also run tests and notebook cells marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow (make test-slow)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def temp_files_inside_pytest_base(tmp_path_factory):
    "Point TMPDIR (for notebooks and commands run as subprocesses) and `tempfile` under pytest's base folder, which a passing run removes."
    folder = str(tmp_path_factory.mktemp("tmpdir"))
    with pytest.MonkeyPatch.context() as patch:  # both are put back at the end of the session
        patch.setenv("TMPDIR", folder)
        patch.setattr(tempfile, "tempdir", folder)
        yield folder


@pytest.fixture
def runslow(request):
    return request.config.getoption("--runslow")


def tool(name):
    "Path of a console script in the project's environment (falls back to PATH)."
    path = VENV_BIN / name
    return str(path) if path.exists() else name
