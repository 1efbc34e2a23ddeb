"""Settings: built-in defaults, overridden by a YAML file; tokens only from the environment."""

from __future__ import annotations

import dataclasses
import os
import re
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit

from bot.core.placeholders import PRESETS, REGIONS
from bot.core.settings import (
    ConfigError,
    CoreSettings,
    FollowupSettings,
    MatchingSettings,
    PrivacySettings,
    RateLimitSettings,
    Region,
    SafetySettings,
    _num,
)
from bot.core.yamlio import LDict, YamlError, load_text
from bot.ops.address import parse_listen

__all__ = [  # the core's settings types are defined in bot.core.settings and re-exported here with the rest
    "ConfigError", "CoreSettings", "DatabaseSettings", "DiscordSettings", "FollowupSettings", "KnowledgeSettings",
    "LoggingSettings", "MatchingSettings", "ModerationSettings", "OpsSettings", "PrivacySettings",
    "RateLimitSettings", "Region", "SafetySettings", "Settings", "TelegramSettings", "load_settings", "token",
]

DEFAULT_CONFIG = "config.yaml"
TOKEN_ENV = {"discord": "DISCORD_TOKEN", "telegram": "TELEGRAM_TOKEN"}
_TOKEN_SHAPES = (
    re.compile(r"[A-Za-z0-9_-]{23,28}\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27,}"),  # Discord bot token
    re.compile(r"(?<!\d)\d{6,12}:[A-Za-z0-9_-]{30,}"),  # Telegram bot token
)


def _repo_knowledge() -> str:
    here = Path.cwd() / "knowledge"
    if here.is_dir():
        return "knowledge"
    bundled = Path(__file__).resolve().parent.parent / "knowledge"
    return str(bundled) if bundled.is_dir() else "knowledge"


@dataclass(frozen=True)
class KnowledgeSettings:
    path: str = field(default_factory=_repo_knowledge)
    watch: bool = True
    poll_seconds: float = _num(1.0, 0.05, 3600)


@dataclass(frozen=True)
class DatabaseSettings:
    """Where runbot stores its data. ``url``: ``sqlite:///FILE`` (the default, ``sqlite:///runbot.db``) or
    ``postgresql://USER@HOST:PORT/DB`` (password from RUNBOT_DATABASE_PASSWORD, never in the file). ``path``: the
    older way to name the SQLite file (same as ``url: sqlite:///PATH``). After construction ``url`` is always set and
    ``path`` is the SQLite file ("" on PostgreSQL)."""

    url: str = ""
    path: str = ""
    #: PostgreSQL connections per process: a message being handled holds one for its turn, so this bounds how many
    #: of one process's messages are handled at once (the rest wait up to 2 s, then are answered from memory)
    pool_size: int = _num(10, 1, 200)

    def __post_init__(self) -> None:
        url, path = self.url.strip(), self.path.strip()
        if url:
            file = _check_database_url(url)
            if path and file != path:
                raise ConfigError("database: set url or path, not both (path is the older form of a sqlite:/// url)",
                                  ("database", "path"))
            path = file or ""
        else:
            path = path or "runbot.db"
            url = f"sqlite:///{path}"
        object.__setattr__(self, "url", url)
        object.__setattr__(self, "path", path)

    @property
    def postgres(self) -> bool:
        return self.url.startswith(("postgresql://", "postgres://"))


def _check_database_url(url: str) -> str | None:
    """The SQLite file of a ``sqlite:///`` url, None for a valid PostgreSQL url; a ConfigError (that never repeats
    the url, which may hold a password) for anything else."""
    where = ("database", "url")
    scheme, sep, rest = url.partition("://")
    if scheme == "sqlite" and sep:
        file = rest[1:] if rest.startswith("/") else ""
        if not file:
            raise ConfigError("database.url: a SQLite url names the file: sqlite:///runbot.db (relative) or "
                              "sqlite:////var/lib/runbot/runbot.db (absolute)", where)
        return file
    if scheme not in ("postgresql", "postgres") or not sep:
        raise ConfigError("database.url: must start with sqlite:/// or postgresql://", where)
    parts = urlsplit(url)
    if parts.password is not None:
        raise ConfigError("database.url: the password does not belong in the file; write the url without it and set "
                          "RUNBOT_DATABASE_PASSWORD in the environment", where)
    try:
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number in range)
    except ValueError:
        raise ConfigError("database.url: the port must be a number (e.g. postgresql://runbot@db:5432/runbot)",
                          where) from None
    if not parts.path.strip("/"):
        raise ConfigError("database.url: name the database, e.g. postgresql://runbot@127.0.0.1:5432/runbot", where)
    return None


@dataclass(frozen=True)
class DiscordSettings:
    enabled: bool = True
    guild_ids: tuple[int, ...] = ()
    listen_channel_ids: tuple[int, ...] = ()
    moderator_role_ids: tuple[int, ...] = ()
    moderator_channel_id: int | None = None
    #: this process's slice of the shards (both unset: every shard Discord recommends)
    shard_count: int | None = _num(None, 1, 65536)
    shard_ids: tuple[int, ...] = field(default=(), metadata={"lo": 0, "hi": 65535})

    def __post_init__(self) -> None:
        ids, count, where = self.shard_ids, self.shard_count, ("discord", "shard_ids")
        if ids and count is None:
            raise ConfigError("discord.shard_ids: needs discord.shard_count (the total over every process)", where)
        if count is not None and any(i >= count for i in ids):
            wrong = next(i for i in ids if i >= count)
            raise ConfigError(f"discord.shard_ids: shard {wrong} does not exist with shard_count {count} (ids run "
                              f"from 0 to {count - 1})", where)
        if len(set(ids)) != len(ids):
            raise ConfigError("discord.shard_ids: a shard is listed twice", where)


@dataclass(frozen=True)
class TelegramSettings:
    enabled: bool = True
    api_base_url: str | None = None
    mode: Literal["polling", "webhook", "worker"] = "polling"
    inbox: Literal["local", "shared"] = "local"
    webhook_url: str | None = None
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = _num(8443, 1, 65535)
    moderator_user_ids: tuple[int, ...] = ()
    moderator_chat_id: int | None = None
    send_rate: float = _num(30.0, 0, 10000, above=True)  # messages a second, all chats (per process)


Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


@dataclass(frozen=True)
class ModerationSettings:
    """Moderators' tools in the chat (issue 17)."""

    #: /faq review, add, edit, phrase, remove-phrase and undo change the knowledge files from the chat
    edit_from_chat: bool = True
    #: when the knowledge folder is in a git work tree, each change from the chat is also a commit
    git_commit: bool = True
    #: a weekly digest (counts only) to the moderators' channel (Discord) and chat (Telegram)
    digest: bool = True
    digest_day: Weekday = "monday"
    #: the hour (UTC) the digest is sent on ``digest_day``
    digest_hour: int = _num(9, 0, 23)


@dataclass(frozen=True)
class OpsSettings:
    """The operations endpoint (/healthz, /metrics): off unless ``listen`` is set."""

    listen: str | None = None  # "host:port", or a port alone for 127.0.0.1 (bot/ops/address.py)

    def __post_init__(self) -> None:
        if self.listen is not None:
            try:
                host, port = parse_listen(self.listen)
            except ValueError as exc:
                raise ConfigError(f"ops.listen: {exc}", ("ops", "listen")) from None
            object.__setattr__(self, "listen", f"[{host}]:{port}" if ":" in host else f"{host}:{port}")

    @property
    def address(self) -> tuple[str, int] | None:
        return None if self.listen is None else parse_listen(self.listen)


@dataclass(frozen=True)
class LoggingSettings:
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    #: message texts are health data: they reach the log (at any level) only when this is set to true explicitly
    include_text: bool = False


@dataclass(frozen=True)
class Settings(CoreSettings):
    """The whole config: the core's settings (``CoreSettings``) plus files, storage, platforms and operations."""

    knowledge: KnowledgeSettings = field(default_factory=KnowledgeSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    discord: DiscordSettings = field(default_factory=DiscordSettings)
    telegram: TelegramSettings = field(default_factory=TelegramSettings)
    moderation: ModerationSettings = field(default_factory=ModerationSettings)
    ops: OpsSettings = field(default_factory=OpsSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    #: where the settings came from (a file path or "built-in defaults"); not a config key
    origin: str = "built-in defaults"
    #: warnings found while loading (e.g. a token pasted into the file); not a config key
    warnings: tuple[str, ...] = ()


def token(platform: str, environ: dict[str, str] | None = None) -> str | None:
    """A platform's token, from its environment variable only."""
    env = os.environ if environ is None else environ
    value = env.get(TOKEN_ENV[platform], "").strip()
    return value or None


def _coerce(value: Any, hint: Any, key: str) -> Any:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        options = get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{key}: wrong value {value!r}")
    if origin is Literal:
        allowed = get_args(hint)
        if value not in allowed:
            raise ConfigError(f"{key}: must be one of {', '.join(map(str, allowed))}, got {value!r}")
        return value
    if origin is tuple:
        item_type = get_args(hint)[0]
        if value is None:
            return ()
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__} {value!r}")
        return tuple(_coerce(v, item_type, f"{key}[{i}]") for i, v in enumerate(value))
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected a whole number, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ConfigError(f"{key}: expected text, got {value!r}")
        return str(value)
    raise ConfigError(f"{key}: unsupported setting type")


def _build(cls: type, data: Any, prefix: str, path: tuple[str, ...] = ()) -> Any:
    if data is None:
        return cls()
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a section of key: value lines, got {data!r}", path)
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in ("origin", "warnings")}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        where = (*path, str(key))
        if key not in fields:
            raise ConfigError(f"{full}: unknown setting (known: {', '.join(sorted(fields))})", where)
        hint = hints[key]
        try:
            if dataclasses.is_dataclass(hint):
                kwargs[key] = _build(hint, value, full, where)
            else:
                kwargs[key] = _in_range(_coerce(value, hint, full), fields[key].metadata, full)
        except ConfigError as exc:
            raise ConfigError(str(exc), exc.path or where) from None
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(str(exc), exc.path or path) from None


def _in_range(value: Any, meta: Any, key: str) -> Any:
    lo, hi, above = meta.get("lo"), meta.get("hi"), meta.get("above", False)
    items = [(f"{key}[{i}]", v) for i, v in enumerate(value)] if isinstance(value, tuple) else [(key, value)]
    for name, v in items:
        if not isinstance(v, int | float) or isinstance(v, bool):
            continue
        if lo is not None and (v <= lo if above else v < lo):
            raise ConfigError(f"{name}: must be {'more than' if above else 'at least'} {lo:g}, got {v:g}")
        if hi is not None and v > hi:
            raise ConfigError(f"{name}: must be at most {hi:g}, got {v:g}")
    return value


def _line(data: Any, path: tuple[str, ...]) -> int | None:
    """The line of the deepest key of ``path`` the file has (the parsed YAML knows each key's line)."""
    line = None
    node = data
    for key in path:
        if not isinstance(node, LDict) or key not in node:
            break
        line = node.line_of(key) or line
        node = node[key]
    return line


def _find_tokens(data: Any, path: str = "") -> list[str]:
    found: list[str] = []
    if isinstance(data, dict):
        for k, v in data.items():
            found += _find_tokens(v, f"{path}.{k}" if path else str(k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            found += _find_tokens(v, f"{path}[{i}]")
    elif isinstance(data, str) and any(p.search(data) for p in _TOKEN_SHAPES):
        found.append(path)
    return found


def _region_warnings(raw: Any, safety: SafetySettings) -> list[str]:
    """An emergency number changed while the crisis line (and the rest) still come from another region's preset."""
    if not isinstance(raw, dict) or "emergency_number" not in raw or "region" in raw or "crisis_line" in raw:
        return []
    preset = PRESETS[safety.region]
    if safety.emergency_number == preset["emergency_number"]:
        return []
    return [
        f"safety.emergency_number is {safety.emergency_number!r} but safety.crisis_line ({safety.crisis_line}) and "
        f"the other places (e.g. {safety.emergency_department}) still come from the '{safety.region}' preset; "
        f"set safety.region ({', '.join(REGIONS)}) or safety.crisis_line"
    ]


def load_settings(path: str | Path | None = None) -> Settings:
    """Read settings: the given file, else ./config.yaml when it exists, else built-in defaults."""
    if path is None:
        if not Path(DEFAULT_CONFIG).exists():
            return Settings()
        path = DEFAULT_CONFIG
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {file}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {file}: {exc}") from None
    try:
        data = load_text(text, str(file))
    except YamlError as exc:
        raise ConfigError(f"{file}:{exc.problem.line}: not valid YAML ({exc.problem.message})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: the config must be a mapping of sections (knowledge:, database:, ...)")
    for section in ("origin", "warnings"):
        if section in data:
            raise ConfigError(f"{file}:{_line(data, (section,)) or 1}: {section}: unknown setting")
    try:
        settings = _build(Settings, data, "")
    except ConfigError as exc:
        line = _line(data, exc.path)
        raise ConfigError(f"{file}:{line}: {exc}" if line else f"{file}: {exc}") from None
    warnings = tuple(
        f"{file}: '{key}' looks like a bot token; tokens belong in the environment "
        f"({', '.join(TOKEN_ENV.values())}), not in a config file"
        for key in _find_tokens(data)
    ) + tuple(f"{file}: {w}" for w in _region_warnings(data.get("safety"), settings.safety))
    return dataclasses.replace(settings, origin=str(file), warnings=warnings)
