"""The unit tier's in-memory store keeps to the Store port, and the engine's conversations run on it."""

from __future__ import annotations

import asyncio
import inspect
import logging

import pytest
from memory_store import MemoryStore
from support import button, dm, press_agree

from bot.bootstrap import Runtime
from bot.core import resilience
from bot.core.store import Store


def _methods(cls: type) -> dict[str, inspect.Signature]:
    return {name: inspect.signature(member) for name, member in vars(cls).items()
            if callable(member) and not name.startswith("_")}


def test_the_memory_store_has_every_method_of_the_port_with_the_same_parameters() -> None:
    port, fake = _methods(Store), _methods(MemoryStore)
    assert set(port) <= set(fake), sorted(set(port) - set(fake))
    for name, signature in port.items():
        assert list(signature.parameters) == list(fake[name].parameters), name
    for name in ("__aenter__", "__aexit__"):
        assert hasattr(MemoryStore, name)


async def test_a_whole_check_with_consent_and_a_checkin_offer_runs_in_memory(memory_runtime: Runtime) -> None:
    out = await press_agree(memory_runtime.engine, await memory_runtime.engine.handle(dm("/triage")), dm("/triage"))
    calm = ("No", "None of these", "Less than 6 weeks", "Sore after runs")
    for _ in range(20):
        buttons = [c for r in out.replies for c in r.choices if button(c.payload, "tri")]
        if not buttons:
            break
        press = next((c for c in buttons if c.label.startswith(calm)), buttons[0])
        out = await memory_runtime.engine.handle(dm(choice=press.payload))
    assert out.kind == "triage" and any(c.label == "Yes, check in" for r in out.replies for c in r.choices)
    yes = next(c.payload for r in out.replies for c in r.choices if c.label == "Yes, check in")
    assert (await memory_runtime.engine.handle(dm(choice=yes))).kind == "followup"
    [planned] = await memory_runtime.store.list_followups()
    assert planned.platform_user_id == "u1" and planned.state == "pending"


async def test_storage_down_in_memory_still_answers_questions_and_red_flags(
    memory_runtime: Runtime, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory_runtime.store.down = True  # type: ignore[attr-defined]
    faq = await memory_runtime.engine.handle(dm("how often should I replace running shoes"))
    assert faq.kind == "answer" and faq.faq_id == "shoe-replacement"
    monkeypatch.setattr(resilience, "NOTE_WAIT", 60.0)  # the reply waits for the safety log's first attempt only
    red_flag = dm("I can't feel my groin and I wet myself without noticing")
    alarm = await asyncio.wait_for(memory_runtime.engine.handle(red_flag), 10)
    assert alarm.kind == "escalation" and alarm.escalation is not None
    assert (await memory_runtime.engine.handle(dm("/mydata"))).kind == "unavailable"
    memory_runtime.drain_seconds = 0.05  # the safety log's write is still retrying: close drops it, with a warning
    with caplog.at_level(logging.WARNING, logger="bot.bootstrap"):
        await memory_runtime.close()
    assert "1 escalation log write(s) still waiting for the database at shutdown were dropped" in caplog.text
