"""Localisation (issue 13 item 16, items 8-9): regional presets, one fill for every reply, the lint, and the
shipped knowledge run through the real engine with ``safety.region: us`` and the default (uk)."""

from __future__ import annotations

import dataclasses
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support import KNOWLEDGE, build_shipped, button, dm, group, press_agree, shipped_knowledge

from bot.bootstrap import Runtime
from bot.config import ConfigError, RateLimitSettings, SafetySettings, Settings, load_settings
from bot.core import placeholders, replies
from bot.core.knowledge import Knowledge
from bot.core.messages import Escalation, Outcome
from bot.core.ports import ManualClock
from bot.lint import check_folder

#: what a US reader must never see (the acceptance line of issue 13)
UK_ONLY = ("999", "A&E", "NHS", "111")
PLACEHOLDER = re.compile(r"\{[a-z_]+\}")


def text_of(out: Outcome) -> str:
    return "\n".join(r.text for r in out.replies)


def uk_words(text: str) -> list[str]:
    return [w for w in UK_ONLY if re.search(rf"(?<![\w.]){re.escape(w)}(?![\w&])", text)]


# --- settings and presets -------------------------------------------------------------------------------------


def test_every_region_fills_every_placeholder() -> None:
    assert placeholders.REGIONS == ("uk", "ie", "us", "ca", "au", "eu")
    fields = {f.name for f in dataclasses.fields(SafetySettings)}
    assert set(placeholders.NAMES) <= fields
    for region, preset in placeholders.PRESETS.items():
        assert set(preset) == set(placeholders.NAMES), region
        s = SafetySettings(region=region)  # type: ignore[arg-type]
        assert placeholders.values(s) == dict(preset)
        assert all(v.strip() and "{" not in v for v in preset.values()), region
        if region not in ("uk", "ie"):  # only the UK and Ireland use 999; only the UK has A&E, the NHS and 111
            assert not uk_words(" ".join(preset.values())), region


def test_presets_hold_the_right_numbers() -> None:
    numbers = {r: placeholders.PRESETS[r]["emergency_number"] for r in placeholders.REGIONS}
    assert numbers == {"uk": "999", "ie": "112 or 999", "us": "911", "ca": "911", "au": "000", "eu": "112"}
    presets = placeholders.PRESETS
    assert "116 123" in presets["uk"]["crisis_line"] and "116 123" in presets["ie"]["crisis_line"]
    assert "988" in presets["us"]["crisis_line"] and "988" in presets["ca"]["crisis_line"]
    assert "13 11 14" in presets["au"]["crisis_line"]
    assert "CORU" in presets["ie"]["physio_register"] and "Ahpra" in presets["au"]["physio_register"]


def test_the_default_is_the_uk_as_before() -> None:
    s = Settings().safety
    assert (s.region, s.emergency_number, s.emergency_department, s.family_doctor) == ("uk", "999", "A&E", "GP")
    assert s.crisis_line == "Samaritans on 116 123 (UK and Ireland, free, 24/7)"


def test_a_key_set_explicitly_wins_over_the_preset(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("safety:\n  region: us\n  family_doctor: family physician\n", encoding="utf-8")
    s = load_settings(cfg).safety
    assert (s.emergency_number, s.family_doctor) == ("911", "family physician")
    assert s.emergency_department == placeholders.PRESETS["us"]["emergency_department"]
    assert load_settings(cfg).warnings == ()


def test_an_unknown_region_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("safety:\n  region: fr\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"safety\.region: must be one of uk, ie, us, ca, au, eu, got 'fr'"):
        load_settings(cfg)
    with pytest.raises(ConfigError, match=r"safety\.region"):
        SafetySettings(region="xx")  # type: ignore[arg-type]


def test_a_new_emergency_number_alone_warns(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("safety:\n  emergency_number: '112'\n", encoding="utf-8")
    [warning] = load_settings(cfg).warnings
    assert "safety.emergency_number" in warning and "safety.crisis_line" in warning and "safety.region" in warning
    cfg.write_text("safety:\n  emergency_number: '112'\n  crisis_line: Telefonseelsorge 0800 111 0 111\n")
    assert load_settings(cfg).warnings == ()
    cfg.write_text("safety:\n  region: eu\n  emergency_number: '112'\n")
    assert load_settings(cfg).warnings == ()


@pytest.mark.slow
def test_the_warning_is_logged_at_start(tmp_path: Path) -> None:
    import subprocess
    import sys

    cfg = tmp_path / "config.yaml"
    cfg.write_text("safety:\n  emergency_number: '112'\n", encoding="utf-8")
    res = subprocess.run(
        [sys.executable, "-m", "bot", "--config", str(cfg), "ask", "--json", "hello"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    assert "WARNING" in res.stderr and "safety.crisis_line" in res.stderr


# --- fill -----------------------------------------------------------------------------------------------------


def test_fill_fills_known_placeholders_and_leaves_the_rest() -> None:
    us = SafetySettings(region="us")
    text = "Call {emergency_number}, go to {emergency_department}, see your {family_doctor}; {nope} {{ }"
    assert placeholders.fill(text, us) == (
        "Call 911, go to the emergency room (ER), see your primary care doctor; {nope} {{ }"
    )
    assert placeholders.unknown(text) == ["nope"] and placeholders.stray_brace(text)
    assert placeholders.region_words("Call 999 or see a GP; see https://111.nhs.uk/ and {urgent_care}") == ["999", "GP"]
    assert placeholders.region_words("co-codamol, A&E, NHS 111, HCPC") == ["co-codamol", "A&E", "NHS", "111", "HCPC"]


def test_no_code_fills_placeholders_by_hand() -> None:
    """One fill: no ``.replace("{emergency_number}"`` or ``.format(emergency_number=`` copies left in bot/."""
    for path in (Path(__file__).resolve().parents[2] / "bot").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert '.replace("{emergency' not in text and ".format(emergency_number" not in text, path


# --- the lint -------------------------------------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    dest = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, dest)
    return dest


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _add_answer_line(path: Path, line: str) -> None:
    """Add a line at the top of the first answer (the shipped files write answers as ``answer: |`` blocks)."""
    text = path.read_text(encoding="utf-8").splitlines()
    i = next(n for n, x in enumerate(text) if x.strip() in ("answer: |", "answer: >", "answer: >-", "answer: |-"))
    indent = len(text[i + 1]) - len(text[i + 1].lstrip())
    text.insert(i + 1, " " * indent + line)
    path.write_text("\n".join(text) + "\n", encoding="utf-8")


@pytest.mark.slow
def test_lint_unknown_and_unfilled_placeholders_are_errors(folder: Path) -> None:
    faq = folder / "faq-causes.yaml"
    _add_answer_line(faq, "Call {emergency_nmber} now.")
    title = next(x for x in faq.read_text(encoding="utf-8").splitlines() if x.strip().startswith("title:"))
    _edit(faq, title, title.split("title:")[0] + "title: Ask a {family_doctor}")
    problems = check_folder(folder, Settings())
    errors = [p.message for p in problems if p.severity == "error"]
    assert any("unknown placeholder {emergency_nmber}" in m for m in errors), errors
    assert any("placeholder {family_doctor} in the title" in m and "never filled" in m for m in errors), errors


@pytest.mark.slow
def test_lint_warns_on_region_words_but_not_in_sources(folder: Path) -> None:
    faq = folder / "faq-causes.yaml"
    _add_answer_line(faq, "If it is an emergency call 999 or go to A&E.")
    problems = check_folder(folder, Settings())
    hits = [p for p in problems if "fits only one region" in p.message and p.file == "faq-causes.yaml"]
    assert hits and all(p.severity == "warning" for p in hits)
    assert any("'999' -> {emergency_number}" in p.message and "'A&E' -> {emergency_department}" in p.message
               for p in hits)
    # sources name the NHS and live in their own field: never flagged
    assert not [p for p in problems if "fits only one region" in p.message and "source" in p.message]


@pytest.mark.slow
def test_runbot_check_strict_fails_on_a_region_word(folder: Path) -> None:
    import subprocess
    import sys

    _edit(folder / "red_flags" / "rhabdo.yaml", "Please go to {emergency_department} now", "Please go to A&E now")
    res = subprocess.run([sys.executable, "-m", "bot", "check", "--strict", str(folder)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 1
    assert "red flag 'rhabdo' says 'A&E'" in res.stdout


def test_red_flag_loader_knows_every_placeholder(folder: Path) -> None:
    _edit(folder / "red_flags" / "kidney.yaml", "call {emergency_number}.", "call {emergency_number} ({physio_reg}).")
    problems = check_folder(folder, Settings())
    assert any("unknown placeholder {physio_reg}" in p.message and p.severity == "error" for p in problems)


# --- the shipped knowledge through the real engine -----------------------------------------------------------


async def _runtime(tmp_path: Path, region: str, *, notice: bool = True) -> Runtime:
    from bot.core.engine import EngineOptions

    settings = Settings(rate_limit=RateLimitSettings(enabled=False), safety=SafetySettings(region=region))  # type: ignore[arg-type]
    options = EngineOptions(first_notice=notice, rate_limit=False)
    return build_shipped(settings, clock=ManualClock(), db_path=tmp_path / f"{region}.db", options=options)


@pytest.fixture
async def us(tmp_path: Path) -> AsyncIterator[Runtime]:
    async with await _runtime(tmp_path, "us") as rt:
        yield rt


@pytest.fixture
async def uk(tmp_path: Path) -> AsyncIterator[Runtime]:
    async with await _runtime(tmp_path, "uk") as rt:
        yield rt


async def _walk_triage(rt: Runtime, limit: int = 400) -> list[tuple[tuple[str, ...], Outcome, list[Outcome]]]:
    """Every path through the triage, pressing every button: (payloads pressed, the last outcome, all outcomes)."""
    done: list[tuple[tuple[str, ...], Outcome, list[Outcome]]] = []
    todo: list[tuple[str, ...]] = [()]
    n = 0
    while todo:
        path = todo.pop()
        n += 1
        assert n <= limit, "the triage has more paths than this test walks"
        user = f"walk{n}"
        start = dm("/triage", user=user)
        seen = [await press_agree(rt.engine, await rt.engine.handle(start), start)]
        for payload in path:
            seen.append(await rt.engine.handle(dm("", user=user, choice=payload)))
        buttons = [c.payload for r in seen[-1].replies for c in r.choices if button(c.payload, "tri")]
        if buttons:
            todo += [(*path, b) for b in buttons]
        else:
            done.append((path, seen[-1], seen))
    return done


async def _everything(rt: Runtime) -> dict[str, str]:
    """Each thing a runner can see, by where it came from: FAQ answers (asked and pressed), red-flag alarms (private
    and in a group, with the repeat reminder), safety questions, every triage path, check-in answers, code replies."""
    k: Knowledge = rt.knowledge.current
    seen: dict[str, str] = {}
    for i, entry in enumerate(k.entries.values()):
        seen[f"faq asked {entry.id}"] = text_of(await rt.engine.handle(dm(entry.questions[0], user=f"faq{i}")))
        pressed = await rt.engine.handle(dm("", user=f"faq{i}", choice=f"faq:{entry.id}"))
        seen[f"faq pressed {entry.id}"] = text_of(pressed)
    for i, cat in enumerate(k.red_flags.categories.values()):
        if cat.examples:
            seen[f"red flag {cat.id}"] = text_of(await rt.engine.handle(dm(cat.examples[0], user=f"rf{i}")))
            seen[f"red flag repeat {cat.id}"] = text_of(await rt.engine.handle(dm(cat.examples[0], user=f"rf{i}")))
            seen[f"red flag group {cat.id}"] = text_of(await rt.engine.handle(group(cat.examples[0], user=f"rg{i}")))
        if cat.check:
            from bot.core.red_flags import RuleHit

            seen[f"check question {cat.id}"] = k.red_flags.safety_check(
                RuleHit(cat.id, cat.level, cat.line, ()), rt.settings.safety
            ).question
        for j, text in enumerate(cat.check_examples[:1]):
            seen[f"check asked {cat.id}"] = text_of(await rt.engine.handle(dm(text, user=f"ck{i}-{j}")))
            seen[f"check yes {cat.id}"] = text_of(await rt.engine.handle(dm("yes", user=f"ck{i}-{j}")))
    for path, last, outs in await _walk_triage(rt):
        seen[f"triage {' > '.join(path)}"] = "\n".join(text_of(o) for o in outs) + "\n" + text_of(last)
    user = await rt.store.get_or_create_user("test", "fu")
    for answer in ("better", "same", "worse"):
        fid = await rt.store.add_followup(user, "chat-fu", "self-care-mild", rt.clock.now())
        await rt.store.update_followup(fid, state="awaiting")
        seen[f"check-in {answer}"] = text_of(await rt.engine.handle(dm("", user="fu", choice=f"fu:{fid}:{answer}")))
    safety = rt.settings.safety
    seen["help"] = text_of(await rt.engine.handle(dm("/help", user="help")))
    seen["fallback"] = text_of(await rt.engine.handle(dm("what is the airspeed of a swallow", user="fb")))
    seen["first notice"] = replies.first_notice(safety)
    seen["safety line"] = replies.safety_line(safety)
    for level in ("emergency", "urgent"):
        esc = Escalation(level, "x")  # type: ignore[arg-type]
        seen[f"code {level}"] = "\n".join((
            replies.escalation_text("", esc, safety), replies.escalation_public(esc, safety, "Sam"),
            replies.escalation_reminder(esc, safety),
        ))
    return seen


@pytest.mark.slow
async def test_us_region_no_reply_anywhere_names_a_uk_service(us: Runtime) -> None:
    seen = await _everything(us)
    assert len(seen) > 60
    # the "Source:" lines count too: outside the UK and Ireland a web citation is shown as its address
    assert any("Source: nhs.uk/" in text for text in seen.values())
    leftovers = {where: (uk_words(text), text[:160]) for where, text in seen.items() if uk_words(text)}
    unfilled = {where: PLACEHOLDER.findall(text) for where, text in seen.items() if PLACEHOLDER.search(text)}
    assert not unfilled, unfilled
    assert not leftovers, "\n".join(f"{w}: {v[0]} in {v[1]!r}" for w, v in sorted(leftovers.items()))


@pytest.mark.slow
async def test_us_region_emergencies_name_911(us: Runtime) -> None:
    k = us.knowledge.current
    for i, cat in enumerate(k.red_flags.categories.values()):
        if cat.examples:
            text = text_of(await us.engine.handle(dm(cat.examples[0], user=f"e{i}")))
            assert "911" in text, (cat.id, text)
            if cat.level == "emergency" and cat.id != "self-harm":
                assert "call 911" in text, (cat.id, text)
    emergencies = [o for path, o, _ in await _walk_triage(us) if o.escalation and o.escalation.level == "emergency"]
    assert emergencies and all("911" in text_of(o) for o in emergencies)


async def test_uk_default_is_unchanged(uk: Runtime) -> None:
    k = uk.knowledge.current
    cauda = k.red_flags.categories["cauda-equina"]
    text = text_of(await uk.engine.handle(dm(cauda.examples[0], user="ce")))
    assert text.startswith("🚨 Please get help now — call 999.")
    assert "go to A&E" in text and "not a diagnosis" in text
    emergencies = [o for path, o, _ in await _walk_triage(uk) if o.escalation and o.escalation.level == "emergency"]
    assert emergencies and all("999" in text_of(o) for o in emergencies)


# --- items 8-9: the self-harm, cardiac and heat-illness messages -------------------------------------------------


async def test_self_harm_opens_with_support_and_the_crisis_line(uk: Runtime) -> None:
    cat = uk.knowledge.current.red_flags.categories["self-harm"]
    assert (cat.header, cat.footer) == (False, False)  # a property of the category in its YAML, not code
    out = await uk.engine.handle(dm(cat.examples[0], user="sh"))
    [reply] = [r for r in out.replies if r.escalation is not None]
    text = reply.text
    assert text.startswith("You don't have to cope with this alone — talk to Samaritans on 116 123")
    assert "🚨" not in text and "not a diagnosis" not in text
    assert text.index("116 123") < text.index("call 999")  # the crisis line first, the emergency number after
    public = text_of(await uk.engine.handle(group(cat.examples[0], user="shg", name="Sam")))
    assert "emergency care" not in public and "999" in public  # the group gets support, not a diagnosis of danger
    reminder = text_of(await uk.engine.handle(dm(cat.examples[0], user="sh")))
    assert "116 123" in reminder


async def test_other_categories_keep_their_header_and_footer(uk: Runtime) -> None:
    cats = uk.knowledge.current.red_flags.categories
    for cid, cat in cats.items():
        if cid == "self-harm":
            continue
        assert (cat.header, cat.footer) == (True, True), cid


async def test_cardiac_sends_for_a_defibrillator_and_cpr(uk: Runtime) -> None:
    cat = uk.knowledge.current.red_flags.categories["cardiac"]
    text = text_of(await uk.engine.handle(dm(cat.examples[0], user="c")))
    assert "defibrillator (AED)" in text and "start CPR" in text and "isn't breathing normally" in text
    assert "Resuscitation Council UK" in cat_source(uk, "cardiac")


async def test_heat_illness_is_for_a_bystander_and_cools_fast(uk: Runtime) -> None:
    cat = uk.knowledge.current.red_flags.categories["heat-illness"]
    message = cat.message
    assert message.startswith("If someone is confused")
    assert "cool them fast (cold water if you can" in message
    assert "sip water" not in message and "sodium" in message
    text = text_of(await uk.engine.handle(dm(cat.examples[0], user="h")))
    assert "call 999" in text.lower()


def cat_source(rt: Runtime, cid: str) -> str:
    path = KNOWLEDGE / "red_flags" / f"{cid}.yaml"
    return next(line for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("source:"))


def test_shipped_red_flag_messages_use_placeholders_not_uk_words() -> None:
    k = shipped_knowledge()
    for cat in k.red_flags.categories.values():
        assert not placeholders.region_words(cat.message) and not placeholders.region_words(cat.check), cat.id


@pytest.mark.slow
def test_lint_reads_flag_notes_and_safety_nets_too(folder: Path) -> None:
    triage = folder / "triage.yaml"
    _edit(triage, "    note: >-\n      Because you're over 50", "    note: >-\n      Call 999. Because you're over 50")
    _edit(triage, "  self-care: >-\n    If it isn't", "  self-care: >-\n    Go to A&E if worse. If it isn't")
    problems = [p for p in check_folder(folder, Settings()) if "fits only one region" in p.message]
    assert any("flag 'new-over-50'" in p.message and "'999'" in p.message for p in problems), problems
    assert any("safety net of self-care" in p.message and "'A&E'" in p.message for p in problems), problems
