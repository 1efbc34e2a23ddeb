"""Small helpers that validate parsed YAML (LDict/LList) and collect Problems with lines."""

from __future__ import annotations

import re
from typing import Any

from bot.core.yamlio import LDict, LList, Problem, line_of

KEBAB = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


class Checker:
    """Collects problems for one file while its data is validated."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def error(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.file, line, message))

    def warn(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.file, line, message, severity="warning"))

    def mapping(self, value: Any, where: str, line: int) -> LDict | None:
        if isinstance(value, LDict):
            return value
        self.error(line_of(value, line), f"{where} must be a mapping (key: value lines), got {_kind(value)}")
        return None

    def keys(self, data: LDict, where: str, required: set[str], optional: set[str]) -> None:
        for key in data:
            if key not in required and key not in optional:
                allowed = ", ".join(sorted(required | optional))
                self.error(data.line_of(key), f"unknown key '{key}' in {where} (allowed: {allowed})")
        for key in sorted(required):
            if key not in data:
                self.error(data.line, f"{where} is missing '{key}'")

    def text(self, data: LDict, key: str, where: str, *, required: bool = True) -> str | None:
        if key not in data:
            return None
        value = data[key]
        line = data.line_of(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            self.error(line, f"'{key}' in {where} must be text, got {_kind(value)}")
            return None
        if required and not value.strip():
            self.error(line, f"'{key}' in {where} is empty")
            return None
        return value.strip()

    def text_list(self, data: LDict, key: str, where: str) -> tuple[str, ...]:
        if key not in data:
            return ()
        value = data[key]
        line = data.line_of(key)
        if isinstance(value, str):
            value_list: list[Any] = [value]
            lines = [line]
        elif isinstance(value, LList):
            value_list = list(value)
            lines = [value.line_of(i) for i in range(len(value))]
        else:
            self.error(line, f"'{key}' in {where} must be a list, got {_kind(value)}")
            return ()
        out: list[str] = []
        for item, item_line in zip(value_list, lines, strict=True):
            if isinstance(item, int | float) and not isinstance(item, bool):
                item = str(item)
            if not isinstance(item, str) or not item.strip():
                self.error(item_line, f"items of '{key}' in {where} must be non-empty text, got {_kind(item)}")
                continue
            out.append(item.strip())
        return tuple(out)

    def boolean(self, data: LDict, key: str, where: str) -> bool | None:
        if key not in data:
            return None
        value = data[key]
        if not isinstance(value, bool):
            self.error(data.line_of(key), f"'{key}' in {where} must be true or false, got {_kind(value)}")
            return None
        return value


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, str):
        return "text"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__
