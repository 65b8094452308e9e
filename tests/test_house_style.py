"""House rules that a reader would otherwise have to check by hand: every third-party import is
declared in pyproject.toml, bilingual text is written one way (中文 / English), and comments state
steps and invariants rather than pointing at issues."""

from __future__ import annotations

import ast
import io
import re
import sys
import tokenize
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATION = ROOT / "station"


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    specs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        specs += extra
    return {_norm(re.split(r"[<>=!~\[; ]", s, maxsplit=1)[0]) for s in specs}


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def test_every_third_party_import_is_declared() -> None:
    """An import in ``station`` (also an optional one inside a function) names a distribution
    listed in pyproject.toml's dependencies or one of its extras."""
    dists = packages_distributions()
    declared = _declared()
    missing: dict[str, str] = {}
    for path in STATION.rglob("*.py"):
        for top in _imports(path):
            if top in sys.stdlib_module_names or top in (
                "station",
                "station_testbed",
                "__future__",
            ):
                continue
            names = {_norm(d) for d in dists.get(top, [])} or {_norm(top)}
            if not names & declared:
                missing[top] = str(path.relative_to(ROOT))
    assert not missing, missing


_CJK = "\u4e00-\u9fff"
_EN_FIRST = re.compile(rf"^[^{_CJK}/]*[A-Za-z][^{_CJK}/]* / [^/]*[{_CJK}]")
_HEADER_NO_SLASH = re.compile(rf"^[{_CJK}（）]+ [A-Za-z][A-Za-z .#-]*$")
# names on discs and in packages, and sheet titles, where "/" cannot stand: "中文 English"
_NAMES = {"原始录像 originals", "存档转码 archival", "档案元数据 metadata", "概要 summary"}
_NAMES |= {"移交清单 handover.pdf"}


def _strings(path: Path) -> list[tuple[int, str]]:
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline):
        if tok.type == tokenize.STRING:
            m = re.match(r"^[rRfFuU]*(\"\"\"|'''|\"|')(.*)\1$", tok.string, re.S)
            if m:
                out.append((tok.start[0], m.group(2)))
    return out


def test_bilingual_text_is_chinese_first() -> None:
    """Messages, headers and labels: ``中文 / English`` (station.text.bi), never English first
    and never a header as ``中文 English`` without the separator."""
    wrong = []
    for path in STATION.rglob("*.py"):
        if "migrations" in path.parts:  # applied migrations are never edited
            continue
        for line, text in _strings(path):
            if text in _NAMES or "``" in text:  # names; docstrings about the text itself
                continue
            text = re.sub(r"\{[^{}]*\}", "{}", text)  # a "/" inside a placeholder divides
            if _EN_FIRST.match(text) or _HEADER_NO_SLASH.match(text):
                wrong.append(f"{path.relative_to(ROOT)}:{line}: {text[:70]}")
    assert not wrong, "\n".join(wrong)


def test_no_comments_pointing_at_issues() -> None:
    pattern = re.compile(r"\b[Ii]ssues? ?#?\d+\b|\bthe lead's\b")
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for folder in ("station", "tests", "bench", "scripts")
        for path in (ROOT / folder).rglob("*.py")
        if path.name != "test_house_style.py"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert not found, found


def test_drift_for_people_never_shows_minus_zero() -> None:
    from station.text import signed_seconds

    assert [signed_seconds(v) for v in (12.04, -3.46, -0.04, 0.0, None)] == [
        "+12.0 s",
        "-3.5 s",
        "0.0 s",
        "0.0 s",
        "",
    ]
