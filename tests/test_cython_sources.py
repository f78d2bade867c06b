"""The .pyx modules compiled with `wraparound=False` hold no negative index or slice bound: there Cython reads
`xs[-1]` of a tuple or list as element -1, an out-of-bounds read (a crash at best), not the last element."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

SOURCES = sorted((Path(__file__).resolve().parent.parent / "cython_ops").glob("*.pyx"))
NEGATIVE = re.compile(r"[\[:,]\s*-\s*[\w(]")        # x[-1], x[:-n], x[a, -b]


def code_lines(text: str):
    """(number, line) of the code, comments and string literals blanked."""
    for number, line in enumerate(text.splitlines(), 1):
        line = re.sub(r"'[^']*'|\"[^\"]*\"", "''", line).split("#", 1)[0]
        yield number, line


def innermost_bracket(text: str) -> int:
    """Position of the last "[" of text still open at its end (-1: none)."""
    depth = 0
    for position in range(len(text) - 1, -1, -1):
        if text[position] == "]":
            depth += 1
        elif text[position] == "[":
            if depth == 0:
                return position
            depth -= 1
    return -1


def negative_indexes(text: str) -> list:
    found = []
    for number, line in code_lines(text):
        for match in NEGATIVE.finditer(line):
            opening = innermost_bracket(line[: match.start() + 1])
            if opening > 0 and (line[opening - 1].isalnum() or line[opening - 1] in "_])"):    # an index, not a list
                found.append(f"{number}: {line.strip()}")
                break
    return found


def test_sources_are_found():
    assert len(SOURCES) >= 10


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_no_negative_index_without_wraparound(source):
    text = source.read_text()
    if "wraparound=False" not in text.split("\n", 1)[0]:
        pytest.skip("compiled with wraparound")
    assert negative_indexes(text) == []


def test_the_check_sees_negative_indexes():
    assert negative_indexes("y = xs[-1]\nz = xs[:-2]\nw = a[i, -k]\n") == ["1: y = xs[-1]", "2: z = xs[:-2]",
                                                                          "3: w = a[i, -k]"]
    assert negative_indexes("y = xs[n - 1]  # xs[-1]\nf(a, -1)\ns = '[-1]'\nz = [a, -b]\nG[2][:] = [1, -1]\n") == []
    assert negative_indexes("y = f(xs)[-1]\nz = xs[k][a:-1]\n") == ["1: y = f(xs)[-1]", "2: z = xs[k][a:-1]"]
