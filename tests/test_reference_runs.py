"""The reference runs (tests/reference_runs.py) give the digests stored when they were recorded: a refactoring changed no result."""
import json

import pytest

from reference_runs import STORED, reference


@pytest.mark.slow
def test_reference_runs_are_bit_identical(tmp_path):
    found = reference(tmp_path)
    assert found == json.loads(STORED.read_text())
    assert found["killed-resumed oltr/stage2"] == found["oltr/stage2"], "a killed and resumed run differs from an uninterrupted one"
