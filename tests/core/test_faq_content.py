"""What the FAQ answers say (issue 13, items 11-16): questions reach the new entries through the engine, the answers
carry the safety content a clinician asked for, region words go through placeholders, and every cited source is
listed in the README."""

from __future__ import annotations

import re

import pytest
import yaml
from support import KNOWLEDGE, ROOT, dm, shipped_knowledge

from bot.bootstrap import Runtime
from bot.config import Settings
from bot.core.decision import decide
from bot.core.knowledge import Knowledge

NEW_ENTRIES = ("bone-stress", "inflammatory-back-pain", "young-runners", "pregnancy-back-pain")
#: the agreed placeholder names (/work/coord/placeholders.md, bot/core/placeholders.py)
PLACEHOLDERS = {"emergency_number", "crisis_line", "emergency_department", "urgent_care", "family_doctor",
                "physio_register"}
#: words that name one country's services; answers write placeholders instead
REGION_WORD = re.compile(r"(?<![\w/.])(?:999|111|NHS|GPs?|HCPC|A&E)(?![\w&])|co-codamol", re.IGNORECASE)


@pytest.fixture(scope="module")
def k() -> Knowledge:
    return shipped_knowledge()


def _lines(k: Knowledge, entry_id: str) -> list[str]:
    return k.entries[entry_id].answer.strip().splitlines()


# --- the new entries are reached in runners' words -------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "entry_id"),
    [
        ("low back and bum ache more every run even after cutting my mileage, bone stress injury?", "bone-stress"),
        ("is under fuelling on marathon training bad for a runner's bones", "bone-stress"),
        ("is my back stiffness inflammatory? mornings are awful and it loosens after a jog", "inflammatory-back-pain"),
        ("my 15 year old has had back ache for three weeks from athletics", "young-runners"),
        ("how much ibuprofen can my 12 year old have for a sore back", "young-runners"),
        ("pregnant runner here, pelvis hurts at the front when i jog", "pregnancy-back-pain"),
        ("should i take ibuprofen before my marathon so my back doesnt hurt", "pain-medication"),
    ],
)
async def test_questions_reach_the_right_entry(quiet_runtime: Runtime, text: str, entry_id: str) -> None:
    out = await quiet_runtime.engine.handle(dm(text))
    assert out.escalation is None, text
    assert (out.kind, out.faq_id) == ("answer", entry_id), (text, out.kind, out.faq_id)


async def test_missed_periods_with_back_pain_get_the_safety_question_then_the_bone_stress_answer(
    quiet_runtime: Runtime,
) -> None:
    """Described symptoms (not a general question) first get the fracture-risk safety question; "no" carries on to
    the entry that says to stop running and see a doctor."""
    first = await quiet_runtime.engine.handle(dm("my periods stopped this year and my lower back aches on every run"))
    assert first.kind == "safety-check"
    assert first.safety_check is not None and first.safety_check.category == "fracture-risk"
    then = await quiet_runtime.engine.handle(dm("no"))
    assert then.escalation is None and then.faq_id == "bone-stress"
    assert any("Stop running" in r.text for r in then.replies)


@pytest.mark.parametrize("entry_id", NEW_ENTRIES)
def test_new_entries_are_full_and_their_phrasings_raise_no_red_flag(k: Knowledge, entry_id: str) -> None:
    entry = k.entries[entry_id]
    assert len(entry.questions) >= 12 and entry.keywords and entry.related and entry.source
    matching = Settings().matching
    for text in (*entry.questions, *entry.examples):
        found = k.red_flags.assess(text)
        assert not found.alarms and not found.checks, (text, found)
        d = decide(k, text, matching)
        assert d.kind == "answer" and d.candidates[0].id == entry_id, (text, d.kind, d.candidates[:2])


# --- what the answers say ---------------------------------------------------------------------------------------

async def test_painkiller_answer_warns_about_nsaids_before_races_first(quiet_runtime: Runtime) -> None:
    out = await quiet_runtime.engine.handle(dm("can i take a couple of nurofen before my half marathon"))
    assert out.faq_id == "pain-medication"
    text = out.replies[0].text
    lines = text.splitlines()
    bottom = lines[2].lower()  # title, blank line, then the answer's first line
    assert "ibuprofen" in bottom and "before or during" in bottom and "race" in bottom
    assert "kidney" in text.lower() and "pharmacist" in text.lower()
    assert text.lower().index("kidney") < text.index("NICE says")  # the race warning comes before everyday advice
    assert "Lipman" in text.split("\nSource: ", 1)[1]
    for line in ("Gels", "Muscle relaxants"):
        assert sum(ln.lstrip("- ").startswith(line) for ln in lines) == 1, line


def test_when_to_see_a_doctor_sorts_falls_and_lumps_by_urgency(k: Knowledge) -> None:
    lines = _lines(k, "when-to-see-doctor")
    emergency = next(ln for ln in lines if "{emergency_number}" in ln)
    assert "fall from a height" in emergency and "serious accident" in emergency
    start = next(i for i, ln in enumerate(lines) if ln.startswith("Get seen today"))
    today = " ".join(lines[start : lines.index(emergency)])
    assert "{urgent_care}" in today
    assert "osteoporosis" in today and "steroid" in today and "minor fall" in today
    assert "lump" in today and "shape" in today


def test_ice_or_heat_warns_about_numb_skin_and_cadence_admits_no_back_evidence(k: Knowledge) -> None:
    heat = k.entries["ice-or-heat"].answer
    assert re.search(r"numb[^.\n]*burn", heat) and "straight on the skin" in heat
    cadence = k.entries["overstriding"].answer
    assert "no direct evidence" in cadence and "Heiderscheit" in cadence
    assert "hips, knees and ankles, not the back" in cadence


def test_new_entries_say_who_to_see(k: Knowledge) -> None:
    bone = k.entries["bone-stress"].answer
    assert "Stop running" in bone.splitlines()[0] and "periods" in bone and "sacrum" in bone
    inflammatory = k.entries["inflammatory-back-pain"]
    assert all(w in inflammatory.answer.splitlines()[0] for w in ("3 months", "45", "morning", "{family_doctor}"))
    assert "NG65" in (inflammatory.source or "")
    young = k.entries["young-runners"].answer
    assert "{family_doctor}" in young.splitlines()[0] and "arching backwards" in young.splitlines()[0]
    assert not re.search(r"\d\s*(mg|ml)\b", young) and "aspirin" in young  # no doses for children
    assert "16 and over" in young
    pregnancy = k.entries["pregnancy-back-pain"].answer
    assert "midwife" in pregnancy.splitlines()[0] and "Pelvic girdle pain" in pregnancy


# --- readability and localisation --------------------------------------------------------------------------------

def test_health_answers_open_with_a_short_bottom_line_and_keep_urls_out(k: Knowledge) -> None:
    for entry in k.entries.values():
        assert not re.search(r"https?://|www\.", entry.answer), entry.id
        if entry.id in ("about-bot", "privacy"):
            continue
        first = entry.answer.strip().splitlines()[0]
        assert first.startswith("Bottom line: ") and len(first) <= 260, entry.id
    for word in ("hyperlordosis", "anterior pelvic tilt", "NSAIDs"):  # jargon only after a plain explanation
        for entry in k.entries.values():
            at = entry.answer.find(word)
            assert at == -1 or "doctors" in entry.answer[max(0, at - 40) : at], (entry.id, word)


def test_answers_name_no_region_and_use_only_known_placeholders(k: Knowledge) -> None:
    for entry in k.entries.values():
        assert not REGION_WORD.findall(entry.answer), (entry.id, REGION_WORD.findall(entry.answer))
        used = set(re.findall(r"\{([^{}]*)\}", entry.answer))
        assert used <= PLACEHOLDERS, (entry.id, used - PLACEHOLDERS)
    assert "{family_doctor}" in k.entries["pain-medication"].answer
    assert "{emergency_department}" in k.entries["sciatica"].answer
    assert "{physio_register}" in k.entries["physiotherapy"].answer


async def test_answer_shows_its_source_on_a_separate_line(quiet_runtime: Runtime) -> None:
    out = await quiet_runtime.engine.handle(dm("what is pelvic girdle pain in pregnancy"))
    assert out.faq_id == "pregnancy-back-pain"
    text = out.replies[0].text
    answer, _, rest = text.partition("\nSource: ")
    assert "nhs.uk/pregnancy" in rest and "http" not in answer


# --- every cited source is listed in the README ---------------------------------------------------------------------

def _source_keys() -> set[str]:
    """A findable key for every source cited in knowledge/: its URL, else a quoted page title, else its author or
    organisation (the text before the first comma or bracket)."""
    sources: list[str] = []
    for path in sorted(KNOWLEDGE.glob("faq*.yaml")):
        sources += [e.get("source") or "" for e in yaml.safe_load(path.read_text(encoding="utf-8"))["entries"]]
    for path in sorted((KNOWLEDGE / "red_flags").glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(data, dict):
            sources.append(str(data.get("source") or ""))
    keys: set[str] = set()
    for source in sources:
        for part in (p.strip() for p in re.split(r";\s+", source) if p.strip()):
            if part.startswith("runbot project documentation"):
                continue
            url = re.search(r"https?://[^\s)]+", part)
            quoted = re.search(r'"([^"]+)"', part)
            keys.add(url.group(0) if url else quoted.group(1) if quoted else re.split(r"[(,]", part)[0].strip())
    return keys


def test_readme_clinical_sources_section_lists_every_cited_source() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Clinical sources", 1)[1].split("\n## ", 1)[0]
    flat = " ".join(section.split())
    keys = _source_keys()
    assert len(keys) > 30
    missing = sorted(key for key in keys if key not in flat)
    assert not missing, missing
