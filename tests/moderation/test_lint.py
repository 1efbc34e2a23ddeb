"""`runbot check`: the moderators' lint catches collisions, unreachable steps and failing examples."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import KNOWLEDGE, ROOT

from bot.config import Settings
from bot.core.yamlio import Problem
from bot.lint import check_folder

COLLIDING = """
  - id: back-after-runs
    title: Back after runs
    questions:
      - why does my lower back hurt after a run
      - sore back once i finish jogging
      - aching back at the end of a long run
    answer: |
      A placeholder answer for the lint test.
"""
UNREACHABLE_STEP = """
  - id: orphan-step
    question: Does your back hurt more going uphill?
    choices:
      - label: "Yes"
        outcome: self-care-mild
      - label: "No"
        outcome: self-care-mild

"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    dest = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, dest, ignore=shutil.ignore_patterns("README.md"))
    return dest


def runbot(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120
    )


def messages(problems: list[Problem], severity: str) -> list[str]:
    return [str(p) for p in problems if p.severity == severity]


def append(path: Path, text: str) -> int:
    """Append ``text`` and return the line number its first non-blank line lands on."""
    before = path.read_text(encoding="utf-8")
    path.write_text(before + text, encoding="utf-8")
    return len(before.splitlines()) + len(text) - len(text.lstrip("\n")) + 1


@pytest.mark.slow
def test_shipped_knowledge_has_no_errors_and_no_collisions() -> None:
    problems = check_folder(KNOWLEDGE, Settings())
    assert messages(problems, "error") == []
    assert not [p for p in problems if "cannot tell these apart" in p.message]


@pytest.mark.slow
def test_planted_colliding_pair_is_caught(folder: Path) -> None:
    line = append(folder / "faq-training.yaml", COLLIDING)
    problems = check_folder(folder, Settings())
    hits = [p for p in problems if "cannot tell these apart" in p.message]
    assert hits, messages(problems, "warning")
    assert all(p.severity == "warning" for p in hits)
    text = " ".join(p.message for p in hits)
    assert "'back-after-runs'" in text and "'back-pain-causes'" in text
    # the warning points at one of the two entries, with file:line
    places = {(p.file, p.line) for p in hits}
    causes_line = next(
        i for i, t in enumerate((folder / "faq-causes.yaml").read_text().splitlines(), 1) if "id: back-pain-causes" in t
    )
    assert places & {("faq-training.yaml", line), ("faq-causes.yaml", causes_line)}


@pytest.mark.slow
def test_unreachable_triage_step_is_caught(folder: Path) -> None:
    path = folder / "triage.yaml"
    text = path.read_text(encoding="utf-8")
    at = text.index("outcomes:\n")
    path.write_text(text[:at] + UNREACHABLE_STEP.lstrip("\n") + text[at:], encoding="utf-8")
    line = text[:at].count("\n") + 1
    problems = check_folder(folder, Settings())
    hit = [p for p in problems if "'orphan-step' cannot be reached" in p.message]
    assert len(hit) == 1 and hit[0].file == "triage.yaml" and hit[0].line == line
    assert hit[0].severity == "warning"
    assert messages(problems, "error") == []


@pytest.mark.slow
def test_thin_entry_long_answer_and_outcome_without_links(folder: Path) -> None:
    thin = COLLIDING.replace("back-after-runs", "hill-reps").replace(
        """      - why does my lower back hurt after a run
      - sore back once i finish jogging
      - aching back at the end of a long run
""", "      - are hill repeats ok for my back\n"
    ).replace("A placeholder answer for the lint test.", "Hill repeats. " * 170)
    append(folder / "faq-training.yaml", thin)
    tri = folder / "triage.yaml"
    tri.write_text(re.sub(r"(?m)^    faq: \[.*\]$", "    faq: []", tri.read_text(encoding="utf-8"), count=1))
    problems = messages(check_folder(folder, Settings()), "warning")
    assert any("'hill-reps' has 1 phrasing(s)" in p for p in problems)
    assert any("answer of 'hill-reps' is" in p and "over 2000" in p for p in problems)
    assert any(p.startswith("triage.yaml:") and "links no FAQ entry" in p for p in problems)


@pytest.mark.slow
def test_examples_that_land_elsewhere_fail_check(folder: Path, tmp_path: Path) -> None:
    ok = runbot("check", str(folder), cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    path = folder / "faq-training.yaml"
    text = path.read_text(encoding="utf-8")
    anchor = "      - is a plank a day enough to fix my back\n"
    assert anchor in text
    # a message about shoes listed as an example of the core-exercises entry
    path.write_text(text.replace(anchor, anchor + "      - how many miles do running shoes last\n", 1))
    res = runbot("check", str(folder), cwd=tmp_path)
    assert res.returncode == 1
    assert "example 'how many miles do running shoes last' of 'core-exercises' lands on" in res.stdout
    assert "error(s)" in res.stderr
    # an example that gets no confident answer at all, or reads as club chatter, also fails
    path.write_text(text.replace(anchor, anchor + "      - quantum chromodynamics lecture notes\n", 1))
    res = runbot("check", str(folder), cwd=tmp_path)
    assert res.returncode == 1 and "gets no confident answer" in res.stdout
    path.write_text(text.replace(anchor, anchor + "      - where do we meet for the club run tonight\n", 1))
    res = runbot("check", str(folder), cwd=tmp_path)
    assert res.returncode == 1 and "looks like club chatter (chatter.yaml)" in res.stdout


@pytest.mark.slow
def test_strict_turns_warnings_into_failures(folder: Path, tmp_path: Path) -> None:
    append(folder / "faq-training.yaml", COLLIDING)
    plain = runbot("check", str(folder), cwd=tmp_path)
    assert plain.returncode == 0 and "warning" in plain.stdout
    strict = runbot("check", "--strict", str(folder), cwd=tmp_path)
    assert strict.returncode == 1
    assert "cannot tell these apart" in strict.stdout


@pytest.mark.slow
def test_broken_yaml_is_an_error_with_file_and_line(folder: Path, tmp_path: Path) -> None:
    path = folder / "faq-bot.yaml"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[5] = "\t" + lines[5].lstrip(" ")
    path.write_text("".join(lines), encoding="utf-8")
    res = runbot("check", str(folder), cwd=tmp_path)
    assert res.returncode == 1 and "faq-bot.yaml:6:" in res.stdout
