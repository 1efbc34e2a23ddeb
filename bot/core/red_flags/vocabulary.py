"""The red-flag catalogue's vocabulary types: the special concepts of context.yaml (NegEx/ConText's trigger lists
and the word-sense guards), the uncertain reasons, and the rule, concept and window records."""

from __future__ import annotations

from dataclasses import dataclass, field

#: First words that give a term its own polarity: a negator in front of "can't pee" means nothing.
POLARITY_FIRST = frozenset(
    "no not never cant cannot couldnt unable wont wouldnt didnt doesnt dont isnt arent havent hasnt "
    "hadnt wasnt werent without nothing none".split()
)


# Special concepts used by the machinery itself.
NEG = "@negators"
POST = "@post_negators"
RESOLVED = "@resolved"
NOT_NEG = "@not_negations"
BREAK = "@clause_breaks"
HYPO = "@hypothetical"
OTHERS = "@other_people"
HISTORY = "@history_markers"
ABOUT_THEM = "@about_them"
FIGURATIVE = "@figurative"
NON_PERSON = "@non_person_subjects"
UNITS = "@units"
UNIT_LEADS = "@unit_leads"
CONDITIONAL = "@conditional"
JOCULAR = "@jocular"
ANYWHERE = "@uncertain_anywhere"
#: YAML key -> special concept; the first are NegEx/ConText's trigger lists, the last four the word-sense guards
SPECIAL_KEYS = {
    "negators": NEG,
    "post_negators": POST,
    "resolved": RESOLVED,
    "not_negations": NOT_NEG,
    "clause_breaks": BREAK,
    "hypothetical": HYPO,
    "other_people": OTHERS,
    "history_markers": HISTORY,
    "about_them": ABOUT_THEM,
    "figurative": FIGURATIVE,
    "non_person_subjects": NON_PERSON,
    "units": UNITS,
    "unit_leads": UNIT_LEADS,
    "conditional": CONDITIONAL,
    "jocular": JOCULAR,
    "uncertain_anywhere": ANYWHERE,
}
#: Reasons that make a symptom uncertain rather than absent: an alarm rule that fires only with such terms asks
#: the category's safety question instead (the check tier). Negation, figurative use, units and non-person subjects
#: are certain: those terms count for nothing.
UNCERTAIN = frozenset(
    {
        "conditional (if / what would happen if)",
        "said as a joke (lol, haha, a laughing emoji)",
        "dated past event (in 2019)",
        "the message says it is a question or all is well (just curious, i'm fine)",
        "another person's past",
        "another person's, and over",
    }
)


@dataclass(frozen=True, slots=True)
class ConceptInfo:
    """A concept's options: ``past_ok`` (a resolution marker does not cancel it)."""

    name: str
    past_ok: bool = False


@dataclass(frozen=True, slots=True)
class Rule:
    """All of ``concepts`` present and counted (in one sentence, the message or a window), none of ``unless``."""

    concepts: tuple[str, ...]
    unless: tuple[str, ...]
    scope: str | int  # "sentence" | "message" | window size in words
    line: int
    file: str = ""
    #: the concepts that must all be in a message for the rule to be tried (one set test per rule and message)
    needs: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "needs", frozenset(self.concepts))


@dataclass(frozen=True, slots=True)
class Window:
    """How far the negation triggers reach (from the catalogue's ``settings``)."""

    negation: int = 6
    post: int = 5
