"""Line-level edits of one FAQ entry (or of chatter.yaml's list): only the lines of what changed are rewritten, so
every other byte of the file (comments, order, quoting, blank lines) stays exactly as it was.

ruamel.yaml reads the file for its structure and line numbers; the edit itself is done on the text's lines. Each
function takes the file's text and returns the new text, or raises ``PatchError`` with a reason a moderator can act on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import (
    DoubleQuotedScalarString,
    FoldedScalarString,
    LiteralScalarString,
    SingleQuotedScalarString,
)

from bot.core.faq_yaml import answer_scalar, dump, load_round_trip
from bot.core.text import normalize

#: the order keys are written in (knowledge/README.md); a new key goes after the last one before it that exists
KEY_ORDER = ("id", "title", "questions", "keywords", "answer", "related", "source", "examples")
_QUOTED = (DoubleQuotedScalarString, SingleQuotedScalarString)


class PatchError(ValueError):
    """The edit cannot be made; the message says why, in words for a moderator."""


@dataclass
class _Doc:
    lines: list[str]  # with their line ends
    data: Any
    newline: str

    @property
    def text(self) -> str:
        return "".join(self.lines)


def _parse(text: str) -> _Doc:
    try:
        data = load_round_trip(text)
    except YAMLError as exc:
        raise PatchError(f"the file is not valid YAML ({str(exc).splitlines()[0]}); fix it by hand first") from None
    return _Doc(text.splitlines(keepends=True), data, "\r\n" if "\r\n" in text else "\n")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _block_end(lines: list[str], start: int, column: int) -> int:
    """The line after the block that starts at ``start``: the lines below it indented deeper than ``column`` belong
    to it (a multi-line value); blank lines and comments after its last line do not."""
    last = start
    for j in range(start + 1, len(lines)):
        line = lines[j]
        if not line.strip():
            continue
        if _indent(line) > column:
            last = j
            continue
        break
    return last + 1


def _dash_column(doc: _Doc, seq: CommentedSeq, index: int) -> int:
    line, col = seq.lc.item(index)
    dash = doc.lines[line].rfind("-", 0, col)
    if dash < 0:
        raise PatchError("this list is not written one '- item' per line; edit the file by hand")
    return dash


def _item_span(doc: _Doc, seq: CommentedSeq, index: int) -> tuple[int, int]:
    line = seq.lc.item(index)[0]
    return line, _block_end(doc.lines, line, _dash_column(doc, seq, index))


def _key_span(doc: _Doc, entry: CommentedMap, key: str) -> tuple[int, int]:
    line, column = entry.lc.key(key)
    value = entry[key]
    end = _block_end(doc.lines, line, column)
    if isinstance(value, CommentedSeq) and len(value) and not value.fa.flow_style():
        end = max(end, _item_span(doc, value, len(value) - 1)[1])  # items may sit at the key's own column
    return line, end


def _block(doc: _Doc, rendered: str, column: int) -> list[str]:
    """Rendered YAML moved to ``column``, with the file's line ends."""
    pad = " " * column
    return [(pad + line if line.strip() else line) + doc.newline for line in rendered.splitlines()]


def _ensure_newline(doc: _Doc, before: int) -> None:
    """The line before an insertion point ends with a line end (a file without one at its end)."""
    if before > 0 and not doc.lines[before - 1].endswith(("\n", "\r")):
        doc.lines[before - 1] += doc.newline


def _entries(doc: _Doc) -> CommentedSeq:
    entries = doc.data.get("entries") if isinstance(doc.data, CommentedMap) else None
    if not isinstance(entries, CommentedSeq):
        raise PatchError("the file has no 'entries' list")
    return entries


def _entry(doc: _Doc, entry_id: str) -> CommentedMap:
    for item in _entries(doc):
        if isinstance(item, CommentedMap) and item.get("id") == entry_id:
            return item
    raise PatchError(f"there is no entry '{entry_id}' in this file")


def _check_line(text: str, what: str) -> str:
    text = " ".join(text.split())
    if not text:
        raise PatchError(f"the {what} is empty")
    return text


def _append_item(doc: _Doc, seq: CommentedSeq, value: str) -> None:
    """Add ``value`` as a new '- item' line after the list's last item, at the same indentation."""
    if not len(seq) or seq.fa.flow_style():
        raise PatchError("this list is not written one '- item' per line; edit the file by hand")
    last = len(seq) - 1
    column = _dash_column(doc, seq, last)
    end = _item_span(doc, seq, last)[1]
    _ensure_newline(doc, end)
    item = dump([value]).lstrip(" ")  # ruamel quotes it only when YAML needs it
    doc.lines[end:end] = _block(doc, item, column)


def add_phrasing(text: str, entry_id: str, phrasing: str) -> str:
    """The entry gets one more phrasing, written after its last one."""
    doc = _parse(text)
    entry = _entry(doc, entry_id)
    phrasing = _check_line(phrasing, "phrasing")
    questions = entry.get("questions")
    if not isinstance(questions, CommentedSeq):
        raise PatchError(f"entry '{entry_id}' has no 'questions' list")
    if any(normalize(str(q)) == normalize(phrasing) for q in questions):
        raise PatchError(f"'{entry_id}' already has the phrasing “{phrasing}”")
    if questions.fa.flow_style():
        return _replace_key(doc, entry, "questions", CommentedSeq([*questions, phrasing]))
    _append_item(doc, questions, phrasing)
    return doc.text


def remove_phrasing(text: str, entry_id: str, phrasing: str) -> str:
    """The entry loses one phrasing (matched as written, or after normalising); its line goes, nothing else."""
    doc = _parse(text)
    entry = _entry(doc, entry_id)
    questions = entry.get("questions")
    if not isinstance(questions, CommentedSeq):
        raise PatchError(f"entry '{entry_id}' has no 'questions' list")
    wanted = normalize(phrasing)
    found = [i for i, q in enumerate(questions) if str(q) == phrasing] or [
        i for i, q in enumerate(questions) if normalize(str(q)) == wanted
    ]
    if not found:
        raise PatchError(f"'{entry_id}' has no phrasing “{phrasing}”")
    if len(questions) == 1:
        raise PatchError(f"“{phrasing}” is the only phrasing of '{entry_id}'; an entry needs at least one")
    if questions.fa.flow_style():
        kept = CommentedSeq([q for i, q in enumerate(questions) if i != found[0]])
        return _replace_key(doc, entry, "questions", kept)
    start, end = _item_span(doc, questions, found[0])
    del doc.lines[start:end]
    return doc.text


def set_questions(text: str, entry_id: str, questions: list[str]) -> str:
    """The entry's phrasings become ``questions``: the ones that stay keep their lines, removed ones lose theirs,
    new ones are added at the end."""
    wanted = [_check_line(q, "phrasing") for q in questions]
    if not wanted:
        raise PatchError("an entry needs at least one phrasing")
    doc = _parse(text)
    current = [str(q) for q in (_entry(doc, entry_id).get("questions") or [])]
    keep = {normalize(q) for q in wanted}
    for q in current:
        if normalize(q) not in keep:
            text = remove_phrasing(text, entry_id, q)
    have = {normalize(q) for q in current}
    for q in wanted:
        if normalize(q) not in have:
            text = add_phrasing(text, entry_id, q)
            have.add(normalize(q))
    return text


def set_field(text: str, entry_id: str, key: str, value: str | None) -> str:
    """Set the entry's ``title``, ``answer`` or ``source`` (None or empty removes an optional one)."""
    if key not in ("title", "answer", "source"):
        raise PatchError(f"'{key}' cannot be set here")
    doc = _parse(text)
    entry = _entry(doc, entry_id)
    value = (value or "").strip("\n")
    if key != "answer":
        value = " ".join(value.split())
    if not value.strip():
        if key == "answer":
            raise PatchError("the answer is empty")
        if key not in entry:
            return text
        start, end = _key_span(doc, entry, key)
        del doc.lines[start:end]
        return doc.text
    old = entry.get(key)
    if key == "answer":
        new: Any = LiteralScalarString(value.rstrip() + "\n") if isinstance(
            old, LiteralScalarString | FoldedScalarString) else answer_scalar(value)
    else:
        new = type(old)(value) if isinstance(old, _QUOTED) else value
    if old is not None and str(old).strip("\n") == str(new).strip("\n"):
        return text
    return _replace_key(doc, entry, key, new)


def _replace_key(doc: _Doc, entry: CommentedMap, key: str, value: Any) -> str:
    """Write ``key: value`` in place of the key's lines, or after the last key that comes before it in KEY_ORDER."""
    rendered = dump({key: value})
    if key in entry:
        start, end = _key_span(doc, entry, key)
        column = entry.lc.key(key)[1]
        doc.lines[start:end] = _block(doc, rendered, column)
        return doc.text
    before = [k for k in KEY_ORDER[: KEY_ORDER.index(key)] if k in entry] or [next(iter(entry))]
    column = entry.lc.key(before[-1])[1]
    end = _key_span(doc, entry, before[-1])[1]
    _ensure_newline(doc, end)
    doc.lines[end:end] = _block(doc, rendered, column)
    return doc.text


def add_chatter(text: str, line: str) -> str:
    """chatter.yaml's list gets one more message, after its last one."""
    doc = _parse(text)
    chatter = doc.data.get("chatter") if isinstance(doc.data, CommentedMap) else None
    if not isinstance(chatter, CommentedSeq):
        raise PatchError("chatter.yaml has no 'chatter' list")
    line = _check_line(line, "message")
    if any(normalize(str(c)) == normalize(line) for c in chatter):
        return text
    _append_item(doc, chatter, line)
    return doc.text


def entry_ids(text: str) -> list[str]:
    """The entry ids of an FAQ file's text, in order."""
    doc = _parse(text)
    return [str(e.get("id")) for e in _entries(doc) if isinstance(e, CommentedMap)]
