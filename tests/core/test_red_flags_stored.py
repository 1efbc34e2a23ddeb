"""The built red-flag detector kept on disk (``bot.core.red_flags.stored``): read back instead of built, and never
trusted when the file is damaged, foreign, writable by others or names anything but the detector's own classes."""

from __future__ import annotations

import gc
import os
import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import KNOWLEDGE

from bot.core.knowledge import load_knowledge
from bot.core.lru import LruCache
from bot.core.red_flags import folder, stored

MESSAGES = (
    "i cant feel my groin and i wet myself on the run",
    "crushing chest pain and my left arm is numb",
    "no numbness anywhere, just a stiff lower back",
    "18 kms easy this morning, pace collapsed on the hill lol",
    "my lower back aches after long runs",
)


@dataclass(frozen=True)
class Stored:
    key: bytes
    name: str
    data: bytes
    answers: list[object]


@pytest.fixture(scope="module")
def first_start(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stored]:
    """One build of the shipped catalogue in an empty cache folder: the file it left and what it answered."""
    keys: list[bytes] = []
    real_save = stored.save
    with pytest.MonkeyPatch.context() as mp:
        cache = tmp_path_factory.mktemp("first-start")
        mp.setenv("RUNBOT_CACHE_DIR", str(cache))
        mp.setattr(folder, "_CATALOGUES", LruCache(2))
        mp.setattr(stored, "save", lambda key, detector: (keys.append(key), real_save(key, detector)))
        answers = _answers()
        (path,) = cache.glob(f"{stored.PREFIX}*.pickle")
        assert path.stat().st_mode & 0o777 == 0o600
        yield Stored(keys[0], path.name, path.read_bytes(), answers)


@pytest.fixture
def cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, first_start: Stored) -> Path:
    """The stored file, as the first start left it, in this test's own cache folder."""
    monkeypatch.setenv("RUNBOT_CACHE_DIR", str(tmp_path))
    path = tmp_path / first_start.name
    path.write_bytes(first_start.data)
    os.chmod(path, 0o600)
    return path


def _fresh_process(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Forget the detectors built in memory (as a new process would) and count the builds from now on."""
    monkeypatch.setattr(folder, "_CATALOGUES", LruCache(2))
    builds: list[int] = []
    real = folder._build

    def counted(*args: object, **kwargs: object) -> object:
        builds.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(folder, "_build", counted)
    return builds


def _answers() -> list[object]:
    k = load_knowledge(KNOWLEDGE)
    return [k.red_flags.detect(m) for m in MESSAGES]


def test_a_second_start_reads_the_stored_detector_and_it_answers_as_the_built_one(
    cache: Path, monkeypatch: pytest.MonkeyPatch, first_start: Stored
) -> None:
    assert [a.level if a else None for a in first_start.answers] == ["emergency", "emergency", None, None, None]
    builds = _fresh_process(monkeypatch)
    assert _answers() == first_start.answers
    assert builds == []  # read from the file, not built
    assert gc.isenabled()


def test_a_damaged_file_is_built_again_and_replaced(
    cache: Path, monkeypatch: pytest.MonkeyPatch, first_start: Stored
) -> None:
    cache.write_bytes(first_start.data[:1000])  # truncated
    assert stored.load(first_start.key) is None
    builds = _fresh_process(monkeypatch)
    assert _answers() == first_start.answers
    assert builds == [1]
    assert stored.load(first_start.key) is not None  # the rebuilt detector was stored again
    assert gc.isenabled()


def test_a_file_others_can_write_is_not_read(cache: Path, first_start: Stored) -> None:
    assert stored.load(first_start.key) is not None
    os.chmod(cache, 0o666)
    assert stored.load(first_start.key) is None


class _Plant:
    """A pickle that would run a command when loaded by a plain unpickler."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, ...]]:
        return (os.system, (f"touch {self.marker}",))


def test_a_planted_pickle_that_names_a_function_is_refused(cache: Path, tmp_path: Path, first_start: Stored) -> None:
    marker = tmp_path / "ran"
    cache.write_bytes(pickle.dumps(_Plant(marker)))
    assert stored.load(first_start.key) is None
    assert not marker.exists()
    assert gc.isenabled()


def test_a_stored_detector_that_fails_its_check_is_not_used(
    cache: Path, monkeypatch: pytest.MonkeyPatch, first_start: Stored
) -> None:
    monkeypatch.setattr(stored, "_works", lambda detector: False)
    assert stored.load(first_start.key) is None


def test_the_check_fails_a_detector_that_misses_the_first_emergency(monkeypatch: pytest.MonkeyPatch) -> None:
    k = load_knowledge(KNOWLEDGE)
    assert stored._works(k.red_flags)
    monkeypatch.setattr(type(k.red_flags), "detect", lambda self, text, *a, **kw: None)
    assert not stored._works(k.red_flags)


def test_another_catalogue_or_other_code_reads_another_file(
    cache: Path, monkeypatch: pytest.MonkeyPatch, first_start: Stored
) -> None:
    assert stored.load(first_start.key) is not None
    assert stored.load(first_start.key + b"an edited catalogue") is None
    monkeypatch.setattr(stored, "_source_identity", lambda: b"the code of another version")
    assert stored.load(first_start.key) is None


def test_no_usable_cache_folder_only_costs_building(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, first_start: Stored
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder", encoding="utf-8")
    monkeypatch.setenv("RUNBOT_CACHE_DIR", str(blocked / "cache"))
    k = load_knowledge(KNOWLEDGE)
    stored.save(first_start.key, k.red_flags)  # cannot be written: no error
    assert stored.load(first_start.key) is None


def test_no_home_folder_only_costs_building(monkeypatch: pytest.MonkeyPatch, first_start: Stored) -> None:
    """``Path.home()`` raises where no home can be found (some containers): the cache is skipped, the load goes on."""

    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(stored, "cache_folder", no_home)
    k = load_knowledge(KNOWLEDGE)
    stored.save(first_start.key, k.red_flags)
    assert stored.load(first_start.key) is None
