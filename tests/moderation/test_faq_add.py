"""`runbot faq add`: driven through stdin like a moderator at a terminal; the file keeps every byte it had."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import KNOWLEDGE, ROOT, dm

from bot.bootstrap import build
from bot.config import Settings
from bot.core.engine import EngineOptions
from bot.core.knowledge import load_knowledge
from bot.core.yamlio import load_text
from bot.faq_add import NewEntry, add_to_text

QUESTIONS = [
    "does an altitude training camp help my back",
    "is running at high altitude hard on the back",
    "back ache on a mountain training camp",
]
ANSWER = [
    "Altitude itself is not known to cause back pain; the jump in training volume at a camp can.",
    "Keep the first days easy and build up as you would at home.",
]
SOURCE = "NHS - Back pain (https://www.nhs.uk/conditions/back-pain/)"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    dest = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, dest, ignore=shutil.ignore_patterns("README.md"))
    return dest


def faq_add(folder: Path, lines: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "bot", "faq", "add", "--knowledge", str(folder)],
        input="".join(line + "\n" for line in lines), capture_output=True, text=True, cwd=cwd, env=env, timeout=120,
    )


def files(folder: Path) -> dict[str, bytes]:
    return {str(f.relative_to(folder)): f.read_bytes() for f in folder.rglob("*") if f.is_file()}


def answers(lines: list[str]) -> list[str]:
    return [*lines, ""]


async def served(folder: Path, tmp_path: Path, question: str) -> str | None:
    options = EngineOptions(first_notice=False, rate_limit=False)
    rt = build(Settings(), knowledge_path=folder, db_path=tmp_path / "served.db", options=options)
    async with rt:
        out = await rt.engine.handle(dm(question))
    return out.faq_id


@pytest.mark.slow
async def test_add_to_existing_file_keeps_every_byte(folder: Path, tmp_path: Path) -> None:
    before = files(folder)
    original = before["faq-training.yaml"]
    assert b"#" in original  # the file has comments to keep
    res = faq_add(folder, [
        "faq-training.yaml",
        "Altitude_Camp",  # not kebab-case
        "running-shoes",  # already used
        "altitude-camp",
        "Altitude camps",
        *answers(QUESTIONS),
        *answers(ANSWER),
        SOURCE,
    ], tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "'Altitude_Camp' isn't a valid id" in res.stdout
    assert "There is already an entry 'running-shoes' (in faq-training.yaml)" in res.stdout
    assert "Added 'altitude-camp' to faq-training.yaml." in res.stdout
    assert "runbot check: OK" in res.stdout

    now = files(folder)
    after = now.pop("faq-training.yaml")
    assert after.startswith(original)  # every existing byte, comments included, untouched
    before.pop("faq-training.yaml")
    assert now == before  # no other file touched, no temp file left behind
    added = after[len(original):].decode()
    assert added.startswith("\n  - id: altitude-camp\n    title: Altitude camps\n    questions:\n")
    k = load_knowledge(folder)
    entry = k.entries["altitude-camp"]
    assert list(entry.questions) == QUESTIONS
    assert entry.answer.strip() == "\n".join(ANSWER)
    assert "    answer: |\n      Altitude itself" in added
    assert entry.source == SOURCE and entry.file == "faq-training.yaml"
    assert await served(folder, tmp_path, "is running at altitude on a training camp bad for my back") == (
        "altitude-camp"
    )


@pytest.mark.slow
async def test_add_to_new_file(folder: Path, tmp_path: Path) -> None:
    res = faq_add(folder, [
        "faq-travel",
        "altitude-camp",
        "",  # no title
        *answers(QUESTIONS),
        *answers(ANSWER),
        "",  # no source
    ], tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    created = folder / "faq-travel.yaml"
    text = created.read_text(encoding="utf-8")
    assert text.startswith("# FAQ: travel\n") and "entries:\n  - id: altitude-camp\n" in text
    assert "title:" not in text and "source:" not in text
    assert await served(folder, tmp_path, QUESTIONS[0]) == "altitude-camp"


@pytest.mark.slow
def test_input_ending_early_writes_nothing(folder: Path, tmp_path: Path) -> None:
    before = files(folder)
    res = faq_add(folder, ["2", "altitude-camp", "Altitude camps", QUESTIONS[0]], tmp_path)
    assert res.returncode == 1 and "nothing was written" in res.stdout
    assert files(folder) == before


@pytest.mark.slow
def test_entry_that_breaks_the_knowledge_is_not_written(folder: Path, tmp_path: Path) -> None:
    """A title over the limit is asked again; a file that is already broken is refused with file:line."""
    target = folder / "faq-bot.yaml"
    broken = target.read_text(encoding="utf-8").replace("  - id: privacy", "  - id: about-bot", 1)
    target.write_text(broken, encoding="utf-8")
    res = faq_add(folder, [
        "faq-causes.yaml", "altitude-camp", "A title that is far too long for any button label", "Altitude",
        *answers(QUESTIONS), *answers(ANSWER), SOURCE,
    ], tmp_path)
    assert res.returncode == 1
    assert "please keep it to 40" in res.stdout
    assert "didn't write faq-causes.yaml" in res.stdout and "duplicate id 'about-bot'" in res.stdout
    assert "altitude-camp" not in (folder / "faq-causes.yaml").read_text(encoding="utf-8")


def test_other_layouts_go_through_a_round_trip() -> None:
    entry = NewEntry("altitude-camp", None, QUESTIONS, "\n".join(ANSWER), None)
    for original in ("# about travel\nentries: []  # none yet\n", "# about travel\nentries:\n"):
        text = add_to_text(original, entry)
        assert text.startswith("# about travel\nentries:")
        assert ("# none yet" in text) == ("# none yet" in original)  # the comment survives the round trip
        data = load_text(text, "faq-travel.yaml")
        assert [e["id"] for e in data["entries"]] == ["altitude-camp"]
        assert data["entries"][0]["questions"] == QUESTIONS
