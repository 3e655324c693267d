"""Citations stay inside the repository: code and docs cite docs/reference/, and every cited section exists.

Someone who inherits only the repository must be able to open what a comment cites. So no tracked
.py/.md/.toml file (outside the published vectors) names the research folder, the old design sketch or
an issue number, and every ``docs/reference/X.md §N`` — and every short ``ref §N`` / ``reference §N``
in a file that names exactly one reference file — is a numbered heading of that file.
"""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "reference"
SUFFIXES = (".py", ".md", ".toml")
SKIP_DIRS = {".venv", "build", ".git", "node_modules", "__pycache__"}
THIS = Path(__file__).resolve()

_OUTSIDE = [
    (re.compile(r"(?<![\w.-])shared/"), "a path in the research folder outside the repository"),
    (re.compile(r"\bDESIGN\.md\b"), "the design sketch outside the repository"),
    (re.compile(r"\b[Ii]ssues?\s*#?\s*\d"), "an issue number (say what the thing is instead)"),
]
_SECTION = r"§\s?\d+(?:\.\d+)*"
_CHAIN = rf"{_SECTION}(?:\s*(?:,|-|–|and)\s*{_SECTION})*"
_FULL = re.compile(rf"docs/reference/([\w-]+\.md)`*\s*({_CHAIN})")
_SHORT = re.compile(rf"\b(?:ref|reference)\s+({_CHAIN})")
_ANY_MD = re.compile(rf"([\w./-]*[\w-]+\.md)`*\s*{_SECTION}")
_NAMED = re.compile(r"docs/reference/([\w-]+\.md)")
_HEADING = re.compile(r"^#{1,6}\s+(\d+(?:\.\d+)*)\.?\s")


def repository_files() -> list[Path]:
    """Tracked and new (not ignored) files; a plain walk when this is not a git checkout."""
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout
        paths = [ROOT / line for line in out.splitlines()]
    except (OSError, subprocess.CalledProcessError):
        paths = [p for p in ROOT.rglob("*") if not SKIP_DIRS & set(p.relative_to(ROOT).parts)]
    return sorted(p for p in paths if p.suffix in SUFFIXES and p.is_file()
                  and p.resolve() != THIS and "tests/vectors/" not in p.relative_to(ROOT).as_posix())


@cache
def sections(name: str) -> frozenset[str]:
    """Numbers of the headings of docs/reference/NAME (fenced code skipped); empty if it is missing."""
    path = REFERENCE / name
    if not path.is_file():
        return frozenset()
    found, fenced = set(), False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (m := _HEADING.match(line)):
            found.add(m.group(1))
    return frozenset(found)


def numbers(chain: str) -> list[str]:
    return re.findall(r"§\s?(\d+(?:\.\d+)*)", chain)


def citation_problems(rel: str, text: str) -> list[str]:
    """Everything wrong with the citations of one file's text."""
    problems = [f"{rel}:{text.count(chr(10), 0, m.start()) + 1}: {what}: {m.group(0)!r}"
                for pattern, what in _OUTSIDE for m in pattern.finditer(text)]
    for m in _FULL.finditer(text):
        problems += [f"{rel}: docs/reference/{m.group(1)} has no §{n}"
                     for n in numbers(m.group(2)) if n not in sections(m.group(1))]
    for m in _ANY_MD.finditer(text):
        if not m.group(1).startswith("docs/reference/"):
            problems.append(f"{rel}: cites {m.group(1)} by section: write docs/reference/NAME.md §N")
    named = set(_NAMED.findall(text))
    if rel.startswith("docs/reference/"):
        named = {Path(rel).name}  # inside a reference file, "§N" means its own section N
    for m in _SHORT.finditer(text):
        if len(named) != 1:
            problems.append(f"{rel}: {m.group(0)!r} but the file names {len(named)} docs/reference files")
            continue
        (name,) = named
        problems += [f"{rel}: {m.group(0)!r}: docs/reference/{name} has no §{n}"
                     for n in numbers(m.group(1)) if n not in sections(name)]
    return problems


def test_every_citation_stays_inside_the_repository_and_resolves():
    problems = []
    for path in repository_files():
        problems += citation_problems(path.relative_to(ROOT).as_posix(), path.read_text(errors="replace"))
    assert not problems, "\n".join(problems)


def test_reference_files_cross_reference_their_own_sections():
    """Inside docs/reference/X.md, a bare (§N) points at X.md's own heading N."""
    bare = re.compile(rf"(?<![\w\]])(?<!DS )(?<!ISO/IEC 14443-4 )\(({_CHAIN})[),;]")
    problems = []
    for path in sorted(REFERENCE.glob("*.md")):
        for m in bare.finditer(path.read_text()):
            problems += [f"{path.name}: ({m.group(1)}): no heading {n}"
                         for n in numbers(m.group(1)) if n not in sections(path.name)]
    assert REFERENCE.is_dir() and not problems, "\n".join(problems)


#: A section sign right after one of these cites that document, not a file of docs/reference.
_EXTERNAL = re.compile(r"(?:\bDS|NT4H2421Gx|AN\d{5}(?:\s+T\d+)?|RFC \d+|SP 800-38B|ISO(?:/IEC)? [\d-]+|IEC [\d-]+"
                       r"|\d{4,5}(?:-\d)?|GS1[\w ]*|Syntax|GenSpecs|\bDL|[\w/-]+\.md`*|\bref|\breference"
                       r"|T\d+(?: note)?)[\s,;:]*$")


def bare_section_problems(rel: str, text: str) -> list[str]:
    """In code, a bare "(§N)" means the one docs/reference file the module names: it must exist there."""
    named = set(_NAMED.findall(text))
    problems = []
    for m in re.finditer(_CHAIN, text):
        before = re.sub(r"\s*\n\s*#?\s*", " ", text[max(0, m.start() - 60):m.start()])
        if _EXTERNAL.search(before):
            continue
        if len(named) != 1:
            problems.append(f"{rel}: bare {m.group(0)!r} but the module names {len(named)} docs/reference files")
        else:
            (name,) = named
            problems += [f"{rel}: bare {m.group(0)!r}: docs/reference/{name} has no §{n}"
                         for n in numbers(m.group(0)) if n not in sections(name)]
    return problems


def test_bare_sections_in_code_resolve_in_the_reference_the_module_names():
    problems = []
    for path in repository_files():
        if path.suffix == ".py":
            problems += bare_section_problems(path.relative_to(ROOT).as_posix(), path.read_text(errors="replace"))
    assert not problems, "\n".join(problems)


def test_bare_sections_check():
    assert bare_section_problems("x.py", "context (§5.3)")  # names no reference file
    assert bare_section_problems("x.py", "docs/reference/ntag424.md\nthe (§77) rule")
    assert not bare_section_problems("x.py", "docs/reference/ntag424.md\n(§5.3), (DS §8.1.1, §8.6)")
    assert not bare_section_problems("x.py", "# ISO/IEC 18004\n# §7.8.3.1 (N1 = 3)")


@pytest.mark.parametrize("text, expected", [
    ("see shared/reference/ntag424.md", "research folder"),
    ("(DESIGN.md)", "design sketch"),
    ("QA gate (issue 8)", "issue number"),
    ("Issue 21.9: argv is visible", "issue number"),
    ("offsets (docs/reference/ntag424.md §99.1)", "has no §99.1"),
    ("(labels-gs1-qa.md §4.2)", "cites labels-gs1-qa.md by section"),
    ("(docs/reference/nowhere.md §1)", "nowhere.md has no §1"),
    ("counter (ref §6.1)", "names 0 docs/reference files"),
    ("docs/reference/ntag424.md and (ref §42)", "has no §42"),
])
def test_the_check_catches(text, expected):
    assert any(expected in p for p in citation_problems("x.py", text)), citation_problems("x.py", text)


@pytest.mark.parametrize("text", [
    "header (docs/reference/ntag424.md §5.1-§5.3), and (ref §2.2, §6.1)",
    "``docs/reference/ntag424.md`` §3 and §9.4; ref §15.14",
    "docs/reference/labels-gs1.md §4.2 (DS §8.1.1, RFC 3986 §6.2.2.1, ISO/IEC 18004 §7.8.3.1)",
])
def test_the_check_accepts(text):
    assert citation_problems("x.py", text) == []
