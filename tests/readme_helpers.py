"""The README's blocks that tests check against the code: the text between a start and an end marker.

A table or list the code can derive (the env-key changes, the idle cost, the env keys and their defaults, the
catalog keys, the import ids) stands in README.md between two HTML comments; the test that owns it reads it here,
so a missing marker fails the same way everywhere and a generated block is compared the same way.
"""

from __future__ import annotations

from shared import REPO_ROOT

README = REPO_ROOT / "README.md"


def readme_rendered() -> str:
    """README's text as Markdown renders it: any run of white space one space (a wrapped line or code span is one)."""
    return " ".join(README.read_text(encoding="utf-8").split())


def readme_section(heading: str, stop: str = "\n## ") -> str:
    """README's text from the line ``heading`` (e.g. ``### On call: ...``, included) to the next ``stop`` (by default
    the next chapter) or the end; fails naming ``heading`` where it is missing."""
    text = README.read_text(encoding="utf-8")
    assert f"\n{heading}\n" in text, f"README lacks its section {heading!r}"
    start = text.index(f"\n{heading}\n") + 1
    end = text.find(stop, start)
    return text[start:end if end != -1 else None]


def readme_block(start: str, end: str, what: str) -> str:
    """README's text from ``start`` (included) to ``end`` (not included); fails naming ``what`` where either marker
    is missing."""
    text = README.read_text(encoding="utf-8")
    assert start in text and end in text, f"README lacks the {what} markers ({start!r} ... {end!r})"
    return text[text.index(start):text.index(end)]


def assert_readme_block_is(start: str, end: str, what: str, expected: str, source: str) -> None:
    """The block between the markers (``start`` a whole marker line) is exactly ``expected``, as ``source`` derives
    it; the failure prints the block to paste."""
    shown = readme_block(start, end, what)[len(start):].strip()
    assert shown == expected, f"README's {what} differs from {source}; replace it with:\n{expected}"
