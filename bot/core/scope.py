"""What a message is about before it is matched: the question in a long or chatty message, and whether it is about
another body part than the back (the pack covers lower back pain only).

Both work on the canonical words (``bot.core.text.words``), so they see what the matcher sees.
"""

from __future__ import annotations

import re

from bot.core.analysis import STOPWORDS
from bot.core.text import MAX_MATCH_CHARS, unify, words

#: body parts and injuries this pack does not cover; a message naming one and nothing of the back is out of scope
OTHER_PARTS: dict[str, str] = {
    "knee": "knee", "knees": "knee", "kneecap": "knee", "kneecaps": "knee", "patella": "knee", "patellar": "knee",
    "itb": "IT band", "iliotibial": "IT band",
    "achilles": "Achilles", "achille": "Achilles",
    "shin": "shin", "shins": "shin", "tibia": "shin",
    "foot": "foot", "feet": "foot", "heel": "heel", "heels": "heel", "toe": "toe", "toes": "toe",
    "toenail": "toe", "toenails": "toe", "bunion": "foot", "bunions": "foot", "metatarsal": "foot",
    "metatarsals": "foot", "plantar": "plantar fascia",
    "ankle": "ankle", "ankles": "ankle",
    "calf": "calf", "calves": "calf",
    "hamstring": "hamstring", "hamstrings": "hamstring", "hammy": "hamstring", "hammies": "hamstring",
    "quad": "quad", "quads": "quad", "quadricep": "quad", "quadriceps": "quad",
    "neck": "neck", "shoulder": "shoulder", "shoulders": "shoulder",
    "elbow": "elbow", "groin": "groin",
    "blister": "blister", "blisters": "blister", "chafing": "chafing",
    "hip": "hip", "hips": "hip", "leg": "leg", "legs": "leg", "wrist": "wrist", "wrists": "wrist", "arm": "arm",
    "arms": "arm", "hand": "hand", "hands": "hand", "finger": "finger", "fingers": "finger", "stomach": "stomach",
    "tummy": "stomach", "gut": "stomach", "headache": "head", "headaches": "head",
}
#: two-word names (checked on the canonical text)
OTHER_PHRASES: dict[str, str] = {
    "it band": "IT band", "hip flexor": "hip flexor", "hip flexors": "hip flexor", "shin splints": "shin",
    "runners knee": "knee", "jumpers knee": "knee", "side stitch": "stitch",
}
#: words that put a message about the back (or the bot itself) in scope whatever else it names
BACK_WORDS = frozenset(
    """
    back backs backache backaches spine spinal lumbar lumbago sciatica sciatic disc discs slipped vertebra vertebrae
    spondylolysis spondylolisthesis spondy coccyx tailbone sacroiliac si facet pelvis pelvic core bot
    runbot privacy data buttock buttocks bum glute glutes nerve nerves overstride overstriding
    overstrider stride strides cadence form
    """.split()
)
#: body-part words that name a movement or a stretch, not the place that hurts ("knees to chest", "foot strike")
_NEUTRAL = re.compile(
    r"\bknees? (?:to|into) (?:my |your |the )?chest\b|\bknee hugs?\b|\bat (?:my|your) feet\b"
    r"|\b(?:foot|feet|heel|forefoot|midfoot) (?:strike|striking|striker|strikers|lands|landing|placement|slap\w*)\b"
    r"|\b(?:squash\w*|squeez\w*|squish\w*|crush\w*|pinch\w*) (?:my |your |the )?toes\b|\btoe box\b"
    r"|\b(?:heel|toe) (?:to toe )?drop\b|\b(?:at|on|under) the (?:heel|toe)\b|\bfeet land\w*\b"
    r"|\b(?:leg|arm)s? swing\w*\b|\bswing\w* (?:my |your |the |their )?(?:arms?|legs?)\b"
)
#: pain travelling down a leg (or zapping, shooting into it) is the sciatica entry's business, whatever part it reaches
_DOWN_LEG = re.compile(
    r"\bdown (?:\w+ ){0,3}legs?\b|\blegs? (?:pain|tingl\w*|numb\w*)\b|\b(?:zap\w*|shoot\w*|radiat\w*|electric\w*)\b"
)
#: "back" that is not the body part: "back of my knee", "back to running", "come back"
_NOT_BACK = re.compile(
    # the back itself, named with a determiner or an adjective ("from the back to the glute", "low back on long runs")
    # ("the back of my knee" stays another part)
    r"(?<!my )(?<!your )(?<!his )(?<!her )(?<!our )(?<!their )(?<!lower )(?<!low )(?<!upper )(?<!sore )"
    r"(?<!bad )(?<!stiff )(?<!tight )(?<!achy )(?<!painful )"
    r"(?:(?<=the )back of\b|(?<!the )\bback (?:of|to|from|into|onto|on|at|for|home|then|in the day|up)\b)"
    r"(?! (?:pain|ache|is|was|hurt|twinge|spasm))"
    r"|\b(?:hopefully|welcome|be|im) back\b"
    r"|\b(?:came|come|comes|coming|get|gets|getting|got|go|goes|going|went|bounce|bounced|bouncing|ease|easing|"
    r"eased|build|building|built|cut|cutting|cuts|hold|holding|held|fight|fought|look|looking|looked|way|"
    r"feedback|aches) back\b"
)


#: the back said to be fine or not the trouble ("no back pain at all", "back's fine now", "not my back this time"):
#: with another part hurting, the message is about that part (42 such lines in the training files, all off-topic)
_BACK_FINE = re.compile(
    r"\b(?:no|not|zero|nil) (?:lower )?back (?:pain|ache|issues?|problems?|trouble|symptoms?)\b"
    r"|\bno pain in (?:my|the) (?:lower )?back\b"
    r"|\b(?:not|isnt|aint) (?:my|the|me) (?:lower )?back\b"
    r"|\bback(?: pain)?(?:s| is| has been| feels| was| seems| s) (?:now |totally |completely |all |much )?"
    r"(?:fine|ok|okay|good|grand|great|sorted|better|gone|healed|perfect|alright|all right)\b"
    r"|\bback no dey pain\b"
)


#: parts also named for form or kit ("tense shoulders", "room at the toes", "lean from the ankles"): they count
#: only with a complaint about them
SOFT_PARTS = frozenset(
    {"shoulder", "toe", "heel", "ankle", "hip flexor", "hip", "leg", "wrist", "arm", "hand", "finger", "stomach"}
)
_COMPLAINT = re.compile(
    r"\b(?:pain\w*|ache|aches|aching|achy|hurt\w*|sore\w*|injur\w*|strain\w*|sprain\w*|tendin\w*|\w+itis|pulled|"
    r"tear|torn|twist\w*|rolled|went over|numb\w*|cramp\w*|blister\w*|swollen|swelling|bruis\w*|rub\w*|raw|agony|"
    r"killing|niggl\w*|tweak\w*|recover\w*)\b"
)


_TRIGGERS = frozenset(OTHER_PARTS) | frozenset(phrase.split()[-1] for phrase in OTHER_PHRASES)


def other_part(text: str) -> str | None:
    """The other body part a message is about, when it says nothing of the back; else None."""
    plain = words(text)
    if _TRIGGERS.isdisjoint(plain):
        return None  # most messages: no body-part word at all, no regex work
    canon = _NEUTRAL.sub(" ", " ".join(plain))
    ws = canon.split()
    phrases = [(phrase, name) for phrase, name in OTHER_PHRASES.items() if f" {phrase} " in f" {canon} "]
    # a word inside a two-word name gives the longer name: "hip flexor" says more than "hip"
    parts = [next((n for ph, n in phrases if w in ph.split()), OTHER_PARTS[w]) for w in ws if w in OTHER_PARTS]
    parts += [name for _, name in phrases]
    if parts and not _COMPLAINT.search(canon):
        parts = [p for p in parts if p not in SOFT_PARTS]
    if not parts:
        return None
    found = parts[0]
    back = " ".join(_BACK_FINE.sub(" ", _NOT_BACK.sub(" ", canon)).split())
    if not BACK_WORDS.isdisjoint(back.split()) or _DOWN_LEG.search(back):
        return None
    return found


#: the back itself, by name (not the bot, not form words)
SPINE_WORDS = frozenset(
    "back backs backache backaches spine spinal lumbar lumbago sciatica sciatic coccyx tailbone sacroiliac".split()
)


def mentions_back(text: str) -> bool:
    """Whether a message names the back (not "back to running", "come back", "back of my knee")."""
    plain = words(text)
    if SPINE_WORDS.isdisjoint(plain):
        return False
    return not SPINE_WORDS.isdisjoint(_NOT_BACK.sub(" ", " ".join(plain)).split())


# ------------------------------------------------------------------------------------------ about the bot itself
_YOU = r"(?:you|u|ya|this bot|the bot|this thing|this chat|this|it|runbot)"
#: questions about what the bot is, does or covers: they are mostly words the matcher drops ("what can you help
#: with", "what kind of questions can i ask you"), so they are recognised by their shape
_ABOUT_BOT = re.compile(
    r"\bwhat (?:kinds?|sorts?|types?) of (?:questions?|things?|stuff|topics?) (?:(?:can|could|do|should|may) (?:i|we)"
    r"|(?:i|we) (?:can|could)) ask\b"
    rf"|\bwhat (?:can|do|could|does|will) {_YOU} (?:actually |even |really |exactly )?"
    r"(?:do(?=$| exactly| here| actually)|help with|help me with|answer|cover|know)\b"
    r"|\bwhat (?:is|s) (?:this bot|this thing|runbot|the bot)(?: for)?\b|\bwhat (?:are|r) (?:you|u) (?:for|exactly)\b"
    r"|\bwho (?:are|r) (?:you|u)\b|\bwho (?:made|built|runs|wrote|created) (?:this|you|u|runbot|the bot)\b"
    r"|\b(?:are|r) (?:you|u) (?:a |an )?(?:bot|robot|ai|human|person|real|program|machine)\b"
    r"|\bis (?:this|it) (?:a |an )?(?:bot|robot|ai|real (?:doctor|physio|person))\b"
    r"|\b(?:can|do) (?:you|u) (?:only )?(?:help|answer|cover|do) (?:with )?\w+ (?:\w+ )?(?:only|just)\b"
    r"|\b(?:only|just) (?:do|does|answer|answers|cover|covers) (?:back|back pain)\b"
)


#: how runners say something hurts (narrower than a complaint: "back stuff or other injuries" is no pain)
_PAIN = re.compile(r"\b(?:pain\w*|ache\w*|aching|achy|hurt\w*|sore\w*|stiff\w*|tight\w*|niggl\w*|twinge\w*|agony)\b")


def back_pain(text: str) -> bool:
    """Whether a message says something hurts (with ``mentions_back``: a back-pain question, not one about the bot)."""
    return bool(_PAIN.search(" ".join(words(text[:MAX_MATCH_CHARS]))))


def about_the_bot(text: str) -> bool:
    """Whether a message asks what the bot is, does or covers ("who are you", "what can you help with", "are you a
    real physio or a robot", "what kind of questions can i ask you")."""
    return bool(_ABOUT_BOT.search(" ".join(words(text[:MAX_MATCH_CHARS]))))


# ----------------------------------------------------------------------------------------------- the question
#: where a sentence or a clause ends: . ! ? ; newlines, dashes between words, ellipses
_SPLIT = re.compile(
    r"(?<=[.!?;])\s+|\n+|\s[-\u2013\u2014]+\s|\u2014|\.\.\.+|(?<=\?)|[\u2600-\u27bf\U0001f000-\U0001faff]+"
)
#: words that announce the question after a preamble ("anyway", "random one", "quick q")
_PIVOT = re.compile(
    r"\b(?:anyway|anyways|anyhoo|random one|random q|random question|quick q|quick one|quick question|my question"
    r"|question for|question is|so my question|q for|the thing is|long story short|tldr|tl dr|but now|but)\b[\s:,]*"
)
_QUESTION_START = frozenset(
    """
    how what whats why when where which who whos is isnt are arent am can cant could should shouldnt would will
    wont do does doesnt did didnt any anyone has have hasnt havent must may might shall was were
    """.split()
)
#: fewer content words than this in the question part: its preamble sentence is kept with it
MIN_FOCUS_WORDS = 4


#: a question that points back at the sentence before it ("is that normal?", "should i keep running on it?")
_REFERS = re.compile(r"\b(?:that|this|it|its|them|they|these|those)\b")


def _content(text: str) -> int:
    return sum(1 for w in words(text) if w not in STOPWORDS)


def _is_question(sentence: str) -> bool:
    stripped = sentence.strip()
    if stripped.endswith("?"):
        return True
    ws = words(stripped)
    return bool(ws) and ws[0] in _QUESTION_START


def asks(text: str) -> bool:
    """Whether the message asks something (a sentence ending in "?" or opening with a question word), rather than
    only reporting how it is ("my periods stopped and my back aches on every run")."""
    parts = _SPLIT.split(unify(text[:MAX_MATCH_CHARS]))
    return any(_is_question(p) for p in parts if p and p.strip(" .!?;,"))


def focus(text: str) -> tuple[str, ...]:
    """The question in a message of several sentences or clauses, as one or two readings to match besides the whole
    message: the last question (or what follows "anyway", "random one —", "quick q"), and the same with the sentence
    before it when the question is short or points back at it ("is that normal?"). Empty for a one-piece message."""
    text = unify(text[:MAX_MATCH_CHARS])
    total = len(words(text))
    parts = [p.strip() for p in _SPLIT.split(text) if p and p.strip(" .!?;,")]
    out: list[str] = []
    questions = [i for i, p in enumerate(parts) if _is_question(p)] if len(parts) >= 2 else []
    if questions:  # a message with no question in it is not read in parts (race reports, club news)
        start = questions[-1]
        out.append(" ".join(parts[start:]))
        # a question that runs over two sentences ("my back aches after runs. why?") keeps what comes before
        if start > 0 and (_content(" ".join(parts[start:])) < MIN_FOCUS_WORDS or _REFERS.search(parts[start])):
            out.append(" ".join(parts[start - 1 :]))
    pivot = None
    for m in _PIVOT.finditer(text):
        pivot = m
    if pivot is not None:
        after = text[pivot.end() :].strip(" -\u2013\u2014:,")
        if len(words(after)) >= MIN_FOCUS_WORDS:
            out.append(after)
    readings = [t for t in dict.fromkeys(out) if 0 < len(words(t)) < total]
    return tuple(readings)
