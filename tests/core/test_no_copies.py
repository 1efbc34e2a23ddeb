"""The knowledge pack must generalize, not memorize: no evaluation line is copied into it."""

from __future__ import annotations

import json

from rapidfuzz import fuzz, process
from support import DATA, shipped_knowledge

from bot.core.text import normalize

#: plain-ratio similarity at or above this counts as a copy (a copy with a typo fixed, a word swapped)
COPY_RATIO = 90
#: Short, canonical questions that sets written without seeing the knowledge happen to share with phrasings the
#: pack had before those sets existed (checked with `git log -S`): a coincidence, not a copy.
COINCIDENCES = frozenset(
    {
        "can tight hamstrings cause lower back pain",
        "how often should i replace running shoes",
        "is yoga good for runners back",
        "why does my lower back hurt after running",
        "is a gait analysis worth it for back pain",
        "best core exercises for runners with back pain",
        "how often should i replace my running shoes",
        "how to protect my lower back while running",
        "when is back pain an emergency",
        "how many miles before i need new running shoes",
        "is running on concrete bad for my back",
        "what is inflammatory back pain",
        "is back pain normal for teenage runners",
        # faq_blind_d (written 2026-12-05 by an author who never saw the knowledge)
        "best glute exercises for runners with back pain",
        "how do i join the club",
        "should i see a physio for my ankle",
        "how do i stop overstriding",
        "should i see a physio for my lower back",
        # faq_blind_e (written 2026-12-05 likewise)
        "can i run with sciatica",
        # faq_blind_h (written 2026-12-05 by an author who never saw the knowledge; the pack did not change that day)
        "what is this bot",
        # faq_blind_j (written 2026-12-05 by an author who never saw the knowledge; the pack did not change that day)
        "best running shoes for lower back pain",
        "do worn out shoes cause back pain",
        "can you run with sciatica",
        "how long does lower back pain from running take to heal",
        "is back pain normal in teenage runners",
        # faq_blind_f (written 2026-12-05 by an author who never saw the knowledge; the pack did not change that day)
        "my lower back feels tight after runs what should i stretch",
        "ice or heat for lower back pain",
        "can i run with lower back pain",
        "should i see a physio for my back pain",
        "physio or chiropractor for lower back pain from running",
        "what should i eat before a morning run",
        "best headtorch for winter running",
        # faq_blind_g (written 2026-12-05 by an author who never saw the knowledge; the pack did not change that day)
        "is running on concrete bad for your back",
    }
)


def test_no_eval_line_is_copied_into_the_knowledge() -> None:
    k = shipped_knowledge()
    written = [*k.chatter]
    for e in k.entries.values():
        written += [*e.questions, *e.keywords, *e.examples]
    written_norm = [normalize(t) for t in written if len(normalize(t).split()) >= 4]
    copies = []
    # dev and blind sets; the FAQ model's training lines (data/train/) are learnt by design, not measured
    for path in sorted(p for p in DATA.parent.glob("*/*.jsonl") if p.parent.name != "train"):
        for line in path.read_text(encoding="utf-8").splitlines():
            text = normalize(json.loads(line)["text"])
            if len(text.split()) < 4 or text in COINCIDENCES:
                continue
            found = process.extractOne(text, written_norm, scorer=fuzz.ratio, score_cutoff=COPY_RATIO)
            if found:
                copies.append(f"{path.name}: {text!r} ~ {found[0]!r} ({found[1]:.0f})")
    assert copies == []
