"""Issue 15: `runbot check` runs every phrasing through the real answer path and reports copies across entries."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import KNOWLEDGE, ROOT

from bot.config import Settings
from bot.lint import check_folder

ANCHOR = "      - how should i warm up before running\n"


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


def plant(folder: Path, line: str) -> None:
    path = folder / "faq-training.yaml"
    text = path.read_text(encoding="utf-8")
    assert ANCHOR in text
    path.write_text(text.replace(ANCHOR, ANCHOR + line, 1), encoding="utf-8")


@pytest.mark.slow
def test_shipped_phrasings_all_reach_their_own_entry() -> None:
    problems = check_folder(KNOWLEDGE, Settings())
    assert not [str(p) for p in problems if "phrasing" in p.message], [str(p) for p in problems]


@pytest.mark.slow
def test_planted_copy_of_another_entrys_phrasing_fails_strict(folder: Path, tmp_path: Path) -> None:
    assert runbot("check", "--strict", str(folder), cwd=tmp_path).returncode == 0
    # a phrasing of 'stretching' copied into 'warm-up-cool-down'
    plant(folder, "      - what stretches help lower back pain after running\n")
    plain = runbot("check", str(folder), cwd=tmp_path)
    assert plain.returncode == 0 and "warning" in plain.stdout
    strict = runbot("check", "--strict", str(folder), cwd=tmp_path)
    assert strict.returncode == 1
    copies = [line for line in strict.stdout.splitlines() if " is the same as " in line]
    assert len(copies) == 1, strict.stdout
    assert "'what stretches help lower back pain after running'" in copies[0]
    assert "of 'stretching'" in copies[0] and "of 'warm-up-cool-down'" in copies[0]
    # the copy also does not reach its own entry: one of the two misses
    assert "does not reach its own entry confidently" in strict.stdout


@pytest.mark.slow
def test_near_copy_is_reported_whatever_its_score(folder: Path) -> None:
    plant(folder, "      - what stretches help lower back pain after a run\n")
    text = " ".join(p.message for p in check_folder(folder, Settings()))
    assert "nearly the same as" in text and "'warm-up-cool-down'" in text


@pytest.mark.slow
def test_phrasing_that_raises_a_red_flag_or_gets_no_answer_is_reported(folder: Path) -> None:
    plant(folder, "      - my back hurts and i cant control my bladder\n")
    plant(folder, "      - what is this all about\n")  # stopwords only: the bot greets
    messages = [p.message for p in check_folder(folder, Settings())]
    assert any("my back hurts and i cant control my bladder" in m and "raises the alarm" in m for m in messages)
    assert any("'what is this all about' of 'warm-up-cool-down' does not reach its own entry confidently: it gets "
               "greeting" in m for m in messages)
