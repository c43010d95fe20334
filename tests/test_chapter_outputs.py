"""Every chapter is stored with its outputs (made by `make outputs`), free of machine paths and progress bars."""
import pytest

from chapter_outputs import chapters, problems


@pytest.mark.parametrize("chapter", chapters(), ids=lambda p: p.stem)
def test_chapter_shows_its_values(chapter):
    assert problems(chapter) == []
