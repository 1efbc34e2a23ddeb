"""Knowledge loading and validation: every problem reported with file and line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from support import KNOWLEDGE, shipped_knowledge

from bot.core.knowledge import KnowledgeError, load_knowledge
from bot.core.yamlio import MAX_FILE_BYTES


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    dest = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, dest)
    return dest


def _problems(folder: Path) -> list[str]:
    with pytest.raises(KnowledgeError) as info:
        load_knowledge(folder)
    return [str(p) for p in info.value.problems if p.severity == "error"]


def test_shipped_knowledge_loads_with_every_required_entry() -> None:
    k = shipped_knowledge()
    required = """back-pain-causes overstriding running-form gait-analysis core-glute-weakness core-exercises
    tight-hips-hamstrings hyperlordosis running-shoes shoe-replacement running-surface training-load warm-up-cool-down
    stretching ice-or-heat run-with-back-pain cross-training pain-medication sciatica imaging when-to-see-doctor
    physiotherapy recovery-time prevention about-bot privacy""".split()
    assert set(required) <= set(k.entries)
    for entry in k.entries.values():
        assert 300 <= len(entry.answer) <= 1200, entry.id
        assert entry.source, entry.id
    assert k.triage.start in k.triage.steps
    assert {"emergency", "urgent"} == {c.level for c in k.red_flags.categories.values()}


def _faq_file(folder: Path) -> Path:
    return sorted(folder.glob("faq*.yaml"))[0]


def test_duplicate_id_dangling_related_and_syntax_error_are_all_named(folder: Path) -> None:
    first = _faq_file(folder)
    (folder / "faq-extra.yaml").write_text(
        "entries:\n"
        "  - id: overstriding\n"
        "    questions: [a, b, c]\n"
        "    answer: dup\n"
        "  - id: new-one\n"
        "    questions: [x, y, z]\n"
        "    answer: fine\n"
        "    related: [does-not-exist]\n",
        encoding="utf-8",
    )
    (folder / "faq-broken.yaml").write_text("entries:\n  - id: oops\n    questions: [unclosed\n", encoding="utf-8")
    problems = _problems(folder)
    text = "\n".join(problems)
    assert "faq-extra.yaml:2: duplicate id 'overstriding'" in text
    assert "faq-extra.yaml:8: entry 'new-one' is related to unknown id 'does-not-exist'" in text
    assert any(p.startswith("faq-broken.yaml:") and "syntax" in p for p in problems)
    assert first.exists()


def test_schema_errors_have_lines(folder: Path) -> None:
    (folder / "faq-bad.yaml").write_text(
        "entries:\n"
        "  - id: Bad_Id\n"
        "    questions: [a]\n"
        "    answer: x\n"
        "  - id: no-answer\n"
        "    questions: [a, b]\n"
        "    answer: ''\n"
        "  - id: wrong-type\n"
        "    questions: 42\n"
        "    answer: x\n"
        "    colour: blue\n",
        encoding="utf-8",
    )
    text = "\n".join(_problems(folder))
    assert "faq-bad.yaml:2: id 'Bad_Id' must be kebab-case" in text
    assert "faq-bad.yaml:7: 'answer' in entry 'no-answer' is empty" in text
    assert "faq-bad.yaml:11: unknown key 'colour'" in text


@pytest.mark.slow
def test_triage_pointing_at_a_missing_step_is_reported(folder: Path) -> None:
    path = folder / "triage.yaml"
    text = path.read_text(encoding="utf-8").replace("next: leg-weakness", "next: leg-weaknes")
    path.write_text(text, encoding="utf-8")
    problems = _problems(folder)
    assert any("triage.yaml:" in p and "step 'leg-weaknes', which does not exist" in p for p in problems)


@pytest.mark.slow
def test_alias_bombs_and_huge_files_are_refused(folder: Path) -> None:
    bomb = "a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\nentries: *c\n"
    (folder / "faq-bomb.yaml").write_text(bomb, encoding="utf-8")
    assert any("anchors and aliases" in p for p in _problems(folder))
    (folder / "faq-bomb.yaml").unlink()
    (folder / "faq-huge.yaml").write_text("#" * (MAX_FILE_BYTES + 10), encoding="utf-8")
    assert any("faq-huge.yaml:1:" in p and "limit" in p for p in _problems(folder))


@pytest.mark.slow
def test_unsafe_tags_never_run_code(folder: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    (folder / "faq-evil.yaml").write_text(
        f"entries: !!python/object/apply:os.system ['touch {marker}']\n", encoding="utf-8"
    )
    with pytest.raises(KnowledgeError):
        load_knowledge(folder)
    assert not marker.exists()


def test_an_unchanged_catalogue_is_reused_and_a_changed_one_built_again(folder: Path) -> None:
    shipped = load_knowledge(folder)
    (folder / "chatter.yaml").write_text("chatter:\n  - see you at the track\n", encoding="utf-8")
    other_faq = load_knowledge(folder)
    assert other_faq.red_flags is shipped.red_flags  # the FAQ side changed, the catalogue did not
    assert other_faq.version != shipped.version and other_faq.chatter != shipped.chatter
    kidney = folder / "red_flags" / "kidney.yaml"
    kidney.write_text(kidney.read_text(encoding="utf-8") + "\n# a comment\n", encoding="utf-8")
    edited = load_knowledge(folder)
    assert edited.red_flags is not shipped.red_flags and edited.version != other_faq.version
    kidney.write_text(kidney.read_text(encoding="utf-8") + "rules: [[\n", encoding="utf-8")
    for _ in range(2):  # a broken catalogue is reported every time, built or not
        assert any(p.startswith("red_flags/kidney.yaml:") for p in _problems(folder))
    model = folder / "red_flags" / "learned-check.json"
    kidney.write_bytes((KNOWLEDGE / "red_flags" / "kidney.yaml").read_bytes())
    model.write_text("{not json", encoding="utf-8")
    for _ in range(2):
        assert any(p.startswith("red_flags/learned-check.json:1") for p in _problems(folder))


def test_an_oversized_red_flag_file_or_model_is_named_every_time(folder: Path) -> None:
    model = folder / "red_flags" / "learned-check.json"
    model.write_bytes(b" " * (MAX_FILE_BYTES + 1))
    for _ in range(2):  # the model is read before the cache is asked: its problem is reported both times
        assert any(p.startswith("red_flags/learned-check.json:1: file is") and "limit" in p for p in _problems(folder))
    model.unlink()
    (folder / "red_flags" / "kidney.yaml").write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    assert any(p.startswith("red_flags/kidney.yaml:1: file is") and "limit" in p for p in _problems(folder))
