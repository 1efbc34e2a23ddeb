"""NegEx-style negation: a trigger before a symptom in the same clause, or "fine"/"normal" right after it."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from bot.core.red_flags.patterns import Hit
from bot.core.red_flags.tokens import Tokens

#: Words that may stand between a symptom and a following "fine"/"normal" ("bladder is totally fine").
POST_FILLERS = frozenset(
    "is are was were be been feel feels feeling felt seem seems seemed all totally completely "
    "perfectly absolutely still both and also working function functions functioning everything "
    "everythings seem the my as".split()
)
#: Words that end a list that a negator in front of a comma reaches over ("no numbness, tingling or ...").
LIST_WORDS = frozenset({"or", "nor"})
#: A pronoun after a comma means a new statement: "no fever, my groin is numb".
SUBJECT_WORDS = frozenset(
    "i im ive id my me mine he hes his him she shes her they theyre their we were our it its now today still".split()
)


def negated_before(
    h: Hit,
    toks: Tokens,
    neg_end: Mapping[int, Hit],
    breaks: set[int],
    free: Callable[[Hit], bool],
    window: int,
) -> bool:
    sent = toks.sentence[h.start]
    seen_subject = False
    j = h.start - 1
    steps = 0
    while j >= 0 and steps < window and toks.sentence[j] == sent:
        if j + 1 in breaks and j + 1 <= h.start:  # "but", "although" ... start a new clause
            return False
        if toks.clause[j] != toks.clause[j + 1]:
            # A comma between: reach over it only for a list ("no numbness, tingling or weakness").
            if seen_subject or not list_follows(toks, j + 1):
                return False
        if toks.words[j] == "and" and j + 1 < h.start and toks.words[j + 1] in SUBJECT_WORDS:
            return False  # "lost 6 kilos without trying and my back hurts": a new statement
        neg = neg_end.get(j)
        if neg is not None and free(neg):
            return True
        if toks.words[j] in SUBJECT_WORDS:
            seen_subject = True
        j -= 1
        steps += 1
    return False


def negated_after(
    h: Hit,
    toks: Tokens,
    post_start: Mapping[int, Hit],
    covered: list[bool],
    free: Callable[[Hit], bool],
    window: int,
) -> bool:
    clause = toks.clause[h.start]
    j = h.end
    n = len(toks.words)
    while j < n and j - h.end <= window and toks.clause[j] == clause:
        post = post_start.get(j)
        if post is not None and free(post):
            return True
        if not covered[j] and toks.words[j] not in POST_FILLERS:
            return False
        j += 1
    return False



def list_follows(toks: Tokens, start: int) -> bool:
    """After the comma at ``start``: does an "or"/"nor" come before the sentence ends?"""
    sent = toks.sentence[start]
    for j in range(start, min(len(toks.words), start + 12)):
        if toks.sentence[j] != sent:
            return False
        if toks.words[j] in LIST_WORDS:
            return True
    return False

