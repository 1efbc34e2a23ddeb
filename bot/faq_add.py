"""`runbot faq add`: an interactive console helper that appends one FAQ entry, keeping the file's comments and order."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from ruamel.yaml.error import YAMLError

from bot.config import Settings
from bot.core import payloads
from bot.core.faq_yaml import NEW_FILE_HEADER, NewEntry, add_to_text, atomic_write, existing_ids
from bot.core.knowledge import FAQ_GLOB, MAX_TITLE
from bot.core.schema import KEBAB
from bot.core.yamlio import Problem
from bot.lint import check_change


class Aborted(Exception):
    """Input ended (Ctrl-D) or the moderator gave up: nothing was written."""


def check_with(folder: Path, file_name: str, text: str, settings: Settings) -> tuple[bool, list[Problem]]:
    """Whether the folder still loads with ``file_name`` replaced by ``text``, and every check problem then.

    Checked on a scratch copy, so the running bot never sees a broken file.
    """
    k, problems = check_change(folder, {file_name: text}, settings)
    return k is not None, problems


class FaqAdd:
    """The conversation; ``ask`` reads one line (None at end of input), ``say`` prints."""

    def __init__(
        self,
        folder: Path,
        settings: Settings,
        ask: Callable[[str], str | None] | None = None,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.folder = folder
        self.settings = settings
        self._ask = ask or _stdin_line
        self._say = say or print

    def line(self, prompt: str) -> str:
        got = self._ask(prompt)
        if got is None:
            raise Aborted("input ended")
        return got.rstrip("\r\n")

    def lines(self, prompt: str) -> list[str]:
        self._say(prompt + " (one per line; an empty line ends)")
        out: list[str] = []
        while True:
            text = self.line("  > ")
            if not text.strip():
                return out
            out.append(text)

    def choose_file(self) -> tuple[Path, bool]:
        files = sorted(self.folder.glob(FAQ_GLOB))
        self._say("Which FAQ file should the entry go into?")
        for i, f in enumerate(files, 1):
            self._say(f"  {i}. {f.name}")
        self._say("  or type a new name, e.g. faq-nutrition.yaml")
        while True:
            text = self.line("File: ").strip()
            if text.isdigit() and 1 <= int(text) <= len(files):
                return files[int(text) - 1], False
            name = text if text.endswith(".yaml") else f"{text}.yaml"
            if not name.startswith("faq"):
                name = f"faq-{name}"
            if any(f.name == name for f in files):
                return self.folder / name, False
            stem = name[: -len(".yaml")]
            if not text or "/" in name or not KEBAB.match(stem):
                self._say("Please type a number from the list, or a new name like faq-nutrition.yaml "
                          "(lowercase words joined by '-').")
                continue
            return self.folder / name, True

    def choose_id(self) -> str:
        taken = existing_ids(self.folder)
        while True:
            eid = self.line("Id (lowercase words joined by '-', e.g. hill-running): ").strip()
            if not KEBAB.match(eid):
                self._say(f"'{eid}' isn't a valid id: use lowercase letters and digits, words joined by '-' "
                          "(like shoe-replacement). Try again.")
            elif not payloads.faq_id_fits(eid):
                self._say(f"That id is too long (at most {payloads.MAX_FAQ_ID} characters). Try a shorter one.")
            elif eid in taken:
                self._say(f"There is already an entry '{eid}' (in {taken[eid]}). Pick another id.")
            else:
                return eid

    def collect(self) -> NewEntry:
        eid = self.choose_id()
        while True:
            title = self.line(f"Title for buttons (optional, at most {MAX_TITLE} characters; empty to skip): ").strip()
            if len(title) <= MAX_TITLE:
                break
            self._say(f"That title has {len(title)} characters; please keep it to {MAX_TITLE}.")
        while True:
            questions = [q.strip() for q in self.lines("Questions: ways runners ask this, in their own words")]
            if questions:
                break
            self._say("An entry needs at least one question.")
        if len(questions) < 3:
            self._say("Tip: 3 or more phrasings help the bot find this entry (you can add more later).")
        while True:
            answer = "\n".join(line.rstrip() for line in self.lines("Answer"))
            if answer.strip():
                break
            self._say("The answer can't be empty.")
        source = self.line("Source (a public reference with its web address; empty to skip): ").strip()
        return NewEntry(eid, title or None, questions, answer.strip("\n"), source or None)

    def run(self) -> int:
        """0 when the entry was written and the check has no errors; 1 otherwise (nothing written on errors)."""
        try:
            path, new_file = self.choose_file()
            entry = self.collect()
        except Aborted:
            self._say("\nStopped: nothing was written.")
            return 1
        if new_file:
            original = NEW_FILE_HEADER.format(topic=path.stem.removeprefix("faq-").replace("-", " "))
        else:
            original = path.read_text(encoding="utf-8")
        try:
            text = add_to_text(original, entry)
        except (ValueError, YAMLError) as exc:
            self._say(f"I couldn't add to {path.name}: {exc}. Fix the file first (runbot check), then try again.")
            return 1
        loads, problems = check_with(self.folder, path.name, text, self.settings)
        errors = [p for p in problems if p.severity == "error"]
        if not loads:
            self._say(f"The entry would make the knowledge invalid, so I didn't write {path.name}:")
            for p in errors:
                self._say(f"  {p}")
            return 1
        atomic_write(path, text)
        self._say(f"Added '{entry.id}' to {path.name}{' (new file)' if new_file else ''}.")
        warnings = [p for p in problems if p.severity != "error"]
        mine = [p for p in warnings if f"'{entry.id}'" in p.message]
        if errors:
            self._say(f"runbot check: {len(errors)} error(s) — the bot runs, but these examples now fail "
                      "(reword the new questions or the examples):")
            for p in errors:
                self._say(f"  {p}")
        else:
            self._say(f"runbot check: OK, {len(warnings)} warning(s) in the folder"
                      + (f", {len(mine)} about the new entry:" if mine else "."))
        for p in mine:
            self._say(f"  {p}")
        self._say("The running bot picks the change up by itself within a few seconds.")
        return 1 if errors else 0


def _stdin_line(prompt: str) -> str | None:
    sys.stdout.write(prompt)
    sys.stdout.flush()
    line = sys.stdin.readline()
    return line if line else None


def run_interactive(folder: Path, settings: Settings) -> int:
    """Entry point for `runbot faq add` (blocking: call it in a thread from async code)."""
    if not folder.is_dir():
        print(f"runbot: knowledge folder {folder} not found", file=sys.stderr)
        return 2
    return FaqAdd(folder, settings).run()


__all__ = ["FaqAdd", "NewEntry", "add_to_text", "atomic_write", "existing_ids", "run_interactive"]
