"""Writing FAQ files with their comments and order kept: the ruamel.yaml round trip shared by `runbot faq add` and the
moderators' in-chat editing (``faq_patch``), and the atomic write both use."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import LiteralScalarString

from bot.core.knowledge import FAQ_GLOB

NEW_FILE_HEADER = (
    "# FAQ: {topic}\n"
    "# Format: see knowledge/README.md. Check your edits with `runbot check knowledge`.\n"
    "entries:\n"
)


def round_trip() -> YAML:
    """ruamel in round-trip mode: comments, key order and quoting survive; long lines are never folded."""
    y = YAML()
    y.preserve_quotes = True
    y.width = 1_000_000
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def load_round_trip(text: str) -> Any:
    """The file as ruamel's commented structures (with line numbers); raises YAMLError."""
    return round_trip().load(text)


@dataclass
class NewEntry:
    id: str
    title: str | None
    questions: list[str]
    answer: str
    source: str | None

    def to_yaml(self) -> CommentedMap:
        m = CommentedMap()
        m["id"] = self.id
        if self.title:
            m["title"] = self.title
        m["questions"] = CommentedSeq(self.questions)
        m["answer"] = answer_scalar(self.answer)
        if self.source:
            m["source"] = self.source
        return m


def answer_scalar(answer: str) -> str:
    """A literal block (``|``) for long or multi-line answers, a plain scalar otherwise."""
    text = answer.rstrip("\n") + "\n"
    return LiteralScalarString(text) if "\n" in text.rstrip("\n") or len(text) > 80 else text.rstrip("\n")


def dump(data: Any) -> str:
    out = io.StringIO()
    round_trip().dump(data, out)
    return out.getvalue()


def existing_ids(folder: Path) -> dict[str, str]:
    """Every entry id in the folder's FAQ files -> file name (read leniently: a broken file adds none)."""
    ids: dict[str, str] = {}
    for f in sorted(folder.glob(FAQ_GLOB)):
        try:
            data = round_trip().load(f.read_text(encoding="utf-8"))
        except (OSError, YAMLError, UnicodeDecodeError):
            continue
        entries = data.get("entries") if isinstance(data, dict) else None
        for e in entries or []:
            if isinstance(e, dict) and isinstance(e.get("id"), str):
                ids.setdefault(e["id"], f.name)
    return ids


def render_entry(entry: NewEntry, indent: int) -> str:
    """The entry as a block list item, indented to sit in an `entries:` list whose dashes are at ``indent``."""
    text = textwrap.dedent(dump([entry.to_yaml()]))  # ruamel puts the top-level dash at the sequence offset
    pad = " " * indent
    return "".join(pad + line if line.strip() else line for line in text.splitlines(keepends=True))


def add_to_text(original: str, entry: NewEntry) -> str:
    """The file's text with the entry appended to its `entries` list; every existing byte stays where it was.

    The new item is appended as text after the last entry when `entries` is the file's last block list (the usual
    layout), so nothing else is re-emitted; other layouts go through a full ruamel round trip.
    """
    y = round_trip()
    data = y.load(original) if original.strip() else None
    if data is None:
        return original + ("" if original.endswith("\n") or not original else "\n") + "entries:\n" + render_entry(
            entry, 2
        )
    if not isinstance(data, CommentedMap):
        raise ValueError("the file is not a mapping with an 'entries' list")
    entries = data.get("entries")
    keys = list(data.keys())
    block = isinstance(entries, CommentedSeq) and len(entries) > 0 and not entries.fa.flow_style()
    if block and keys[-1] == "entries":
        first_line = entries.lc.item(0)[0]
        line_text = original.splitlines()[first_line]
        indent = len(line_text) - len(line_text.lstrip(" "))
        base = original if original.endswith("\n") else original + "\n"
        return base + "\n" + render_entry(entry, indent)
    if entries is None:
        data["entries"] = CommentedSeq()
        entries = data["entries"]
    if not isinstance(entries, list):
        raise ValueError("'entries' is not a list")
    entries.append(entry.to_yaml())
    return dump(data)


def atomic_write(path: Path, text: str | bytes) -> None:
    """Write next to the file and rename over it: the running bot never reads a half-written file."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            shutil.copymode(path, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
