"""Safe YAML loading that remembers line numbers, so every problem can be reported as file:line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

#: libyaml's parser when PyYAML was built with it (about 10x faster), else the pure-Python one; both are "safe".
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_STR = "tag:yaml.org,2002:str"

#: Knowledge files larger than this are refused before parsing.
MAX_FILE_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    """One thing wrong in a knowledge file, reported to moderators as ``file:line: message``."""

    file: str
    line: int
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        prefix = "" if self.severity == "error" else f"{self.severity}: "
        return f"{self.file}:{self.line}: {prefix}{self.message}"


class LDict(dict[str, Any]):
    """A mapping from YAML that knows its own line and the line of each key (1-based)."""

    line: int = 0
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class LList(list[Any]):
    """A sequence from YAML that knows its own line and the line of each item (1-based)."""

    line: int = 0
    item_lines: list[int]

    def line_of(self, index: int) -> int:
        return self.item_lines[index] if 0 <= index < len(self.item_lines) else self.line


class YamlError(Exception):
    """The file could not be read as YAML; carries a Problem with the line."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def line_of(obj: Any, default: int = 1) -> int:
    """The line an LDict/LList started on, or ``default``."""
    return getattr(obj, "line", default) or default


def load_text(text: str, file: str) -> Any:
    """Parse YAML text with the safe loader; anchors and aliases are refused (no alias bombs)."""
    loader = _LOADER(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else 1
            msg = exc.problem or str(exc)
            raise YamlError(Problem(file, line, f"YAML syntax error: {msg}")) from None
        except yaml.YAMLError as exc:
            raise YamlError(Problem(file, 1, f"YAML error: {exc}")) from None
        if node is None:
            return None
        return _convert(node, loader, file, set())
    finally:
        loader.dispose()


def load_file(path: Path, display: str | None = None) -> Any:
    """Read and parse one YAML file, refusing files over MAX_FILE_BYTES or not UTF-8."""
    return load_bytes(read_bytes(path, display), display or path.name)


def read_bytes(path: Path, display: str | None = None) -> bytes:
    """A knowledge file's bytes, refused before reading when it is over MAX_FILE_BYTES."""
    name = display or path.name
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            limit = MAX_FILE_BYTES // (1024 * 1024)
            raise YamlError(Problem(name, 1, f"file is {size // 1024} KB; the limit is {limit} MB"))
        return path.read_bytes()
    except OSError as exc:
        raise YamlError(Problem(name, 1, f"cannot read file: {exc.strerror}")) from None


def load_bytes(raw: bytes, name: str) -> Any:
    """Parse a knowledge file's bytes (UTF-8, at most MAX_FILE_BYTES)."""
    if len(raw) > MAX_FILE_BYTES:
        limit = MAX_FILE_BYTES // (1024 * 1024)
        raise YamlError(Problem(name, 1, f"file is {len(raw) // 1024} KB; the limit is {limit} MB"))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise YamlError(Problem(name, 1, "file is not valid UTF-8 text")) from None
    return load_text(text, name)


def _convert(node: yaml.Node, loader: Any, file: str, seen: set[int]) -> Any:
    if id(node) in seen:
        raise YamlError(
            Problem(file, node.start_mark.line + 1, "YAML anchors and aliases (& and *) are not allowed here")
        )
    seen.add(id(node))
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out = LDict()
        out.line = line
        out.key_lines = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise YamlError(Problem(file, key_node.start_mark.line + 1, "YAML merge keys (<<) are not allowed"))
            key = _convert(key_node, loader, file, seen)
            if not isinstance(key, str | int | float | bool) or key is None:
                raise YamlError(Problem(file, key_node.start_mark.line + 1, "mapping keys must be plain text"))
            skey = str(key)
            if skey in out:
                raise YamlError(Problem(file, key_node.start_mark.line + 1, f"key '{skey}' appears twice"))
            out[skey] = _convert(value_node, loader, file, seen)
            out.key_lines[skey] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        seq = LList()
        seq.line = line
        seq.item_lines = []
        for item in node.value:
            if item.tag == _STR and type(item) is yaml.ScalarNode and id(item) not in seen:
                seen.add(id(item))  # plain text items (most of a FAQ) without a call per item
                seq.append(item.value)
            else:
                seq.append(_convert(item, loader, file, seen))
            seq.item_lines.append(item.start_mark.line + 1)
        return seq
    if node.tag == _STR and isinstance(node, yaml.ScalarNode):
        return node.value  # the common case, without the constructor's bookkeeping
    try:
        return loader.construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        raise YamlError(Problem(file, line, f"cannot read value: {exc}")) from None
