"""Settings: defaults, partial files, the documented example, one-line errors, tokens only from the environment."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from support import ROOT

from bot.config import ConfigError, Settings, load_settings, token


def _keys(obj: object, prefix: str = "") -> set[str]:
    out: set[str] = set()
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        if f.name in ("origin", "warnings"):
            continue
        value = getattr(obj, f.name)
        name = f"{prefix}{f.name}"
        out |= _keys(value, name + ".") if dataclasses.is_dataclass(value) else {name}
    return out


def test_example_documents_every_setting_with_its_default() -> None:
    example = load_settings(ROOT / "config.example.yaml")
    assert dataclasses.replace(example, origin="built-in defaults") == Settings()
    text = (ROOT / "config.example.yaml").read_text(encoding="utf-8")
    for key in _keys(Settings()):
        assert f"{key.split('.')[-1]}:" in text, key


def test_partial_file_keeps_other_defaults(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("safety: {emergency_number: '911'}\ndiscord: {guild_ids: [123]}\n", encoding="utf-8")
    s = load_settings(cfg)
    assert s.safety.emergency_number == "911" and s.discord.guild_ids == (123,)
    assert s.matching == Settings().matching


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("followups: {max_checkins: three}", "followups.max_checkins: expected a whole number"),
        ("telegram: {mode: push}", "telegram.mode: must be one of polling, webhook"),
        ("matching: {confidence: 3}", "matching.confidence: unknown setting"),
        ("- a list", "must be a mapping"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, content: str, message: str) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_token_in_config_file_triggers_a_warning(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    fake = "123456789:" + "A" * 35
    cfg.write_text(f"telegram: {{api_base_url: 'http://x/bot{fake}'}}\n", encoding="utf-8")
    s = load_settings(cfg)
    assert s.warnings and "telegram.api_base_url" in s.warnings[0]
    assert fake not in s.warnings[0]


def test_tokens_come_from_the_environment_only() -> None:
    assert token("discord", {"DISCORD_TOKEN": " abc "}) == "abc"
    assert token("telegram", {}) is None
