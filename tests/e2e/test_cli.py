"""The `runbot` command as a user runs it: ask, check, eval, chat, config errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import DATA, KNOWLEDGE, ROOT


def runbot(*args: str, stdin: str | None = None, cwd: Path | None = None, timeout: float = 120):  # type: ignore[no-untyped-def]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DISCORD_TOKEN", None)
    env.pop("TELEGRAM_TOKEN", None)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        env=env,
        timeout=timeout,
    )


@pytest.mark.slow
def test_ask_json_answers_one_message() -> None:
    res = runbot("ask", "--json", "why does my lower back hurt after running?")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["faq_id"] == "back-pain-causes"
    assert out["escalation"] == "none"
    assert set(out) >= {"faq_id", "escalation", "reply", "confidence", "alternatives"}
    assert 0 <= out["confidence"] <= 100


@pytest.mark.slow
def test_ask_jsonl_keeps_order_over_1000_lines() -> None:
    texts = [
        "I can't feel my groin and can't pee",
        "no numbness, just stiff",
        "when should i replace my running shoes",
        "what time does the sunday long run meet?",
    ]
    lines = [json.dumps({"text": f"{texts[i % 4]} #{i}"}) for i in range(1000)]
    res = runbot("ask", "--jsonl", stdin="\n".join(lines) + "\n", timeout=300)
    assert res.returncode == 0, res.stderr
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(rows) == 1000
    assert [r["escalation"] for r in rows[:4]] == ["emergency", "none", "none", "none"]
    assert rows[2]["faq_id"] == "shoe-replacement"
    assert all(rows[i]["escalation"] == "emergency" for i in range(0, 1000, 4))
    assert all(rows[i]["escalation"] == "none" for i in range(1, 1000, 4))


@pytest.mark.slow
def test_ask_jsonl_bad_line_gets_an_error_object_not_a_traceback() -> None:
    res = runbot("ask", "--jsonl", stdin='{"text": "hi"}\nnot json\n{"nope": 1}\n')
    assert res.returncode == 0
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(rows) == 3 and "error" in rows[1] and "error" in rows[2]
    assert "Traceback" not in res.stderr


@pytest.mark.slow
def test_check_is_clean_on_shipped_knowledge() -> None:
    res = runbot("check", str(KNOWLEDGE))
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.slow
def test_check_names_every_problem(tmp_path: Path) -> None:
    folder = tmp_path / "k"
    shutil.copytree(KNOWLEDGE, folder)
    (folder / "faq-z.yaml").write_text(
        "entries:\n  - id: sciatica\n    questions: [a, b, c]\n    answer: x\n    related: [ghost]\n",
        encoding="utf-8",
    )
    (folder / "faq-y.yaml").write_text("entries: [\n", encoding="utf-8")
    res = runbot("check", str(folder))
    assert res.returncode == 1
    assert "faq-z.yaml:2: duplicate id 'sciatica'" in res.stdout
    assert "faq-z.yaml:5:" in res.stdout and "ghost" in res.stdout
    assert "faq-y.yaml:" in res.stdout and "syntax" in res.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "flags"),
    [
        ("faq_dev.jsonl", ["--min-accuracy", "0.9", "--min-rejection", "0.9", "--max-false-escalation", "0.05"]),
        (
            "redflag_dev.jsonl",
            ["--min-emergency-recall", "1.0", "--min-urgent-recall", "1.0", "--max-false-escalation", "0.05"],
        ),
        # written independently of the knowledge pack: a guard against tuning to the dev set alone
        ("faq_holdout.jsonl", ["--min-accuracy", "0.88", "--min-rejection", "0.9", "--max-false-escalation", "0.02"]),
    ],
)
def test_eval_thresholds_on_the_dev_sets(name: str, flags: list[str]) -> None:
    res = runbot("eval", str(DATA / name), *flags)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.slow
def test_eval_fails_below_threshold() -> None:
    res = runbot("eval", str(DATA / "faq_dev.jsonl"), "--min-accuracy", "1.01", "--quiet")
    assert res.returncode == 1
    assert "FAILED" in res.stderr


@pytest.mark.slow
def test_chat_console_answers_and_numbers_choices(tmp_path: Path) -> None:
    script = "why does my lower back hurt after running?\n/triage\n1\n/quit\n"
    res = runbot("chat", "--db", str(tmp_path / "c.db"), stdin=script)
    assert res.returncode == 0, res.stderr
    assert "Why running hurts my back" in res.stdout or "back" in res.stdout.lower()
    assert "  1. " in res.stdout
    assert "999" in res.stdout  # the first triage answer (1 = Yes) is a red flag


@pytest.mark.slow
def test_chat_works_without_config_from_another_folder(tmp_path: Path) -> None:
    res = runbot("chat", "--db", str(tmp_path / "c.db"), stdin="/help\n", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "/triage" in res.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("matching: {confident: high}\n", ":1: matching.confident: expected a number"),
        ("databse: {path: x.db}\n", ":1: databse: unknown setting"),
        ("knowledge: [\n", "not valid YAML"),
        ("# rate limits\nrate_limit:\n  per_seconds: -5\n", ":3: rate_limit.per_seconds: must be more than 0, got -5"),
        ("followups:\n  enabled: true\n  first_after_days: -2\n", ":3: followups.first_after_days: must be more"),
        ("matching:\n  confident: 500\n", ":2: matching.confident: must be at most 100, got 500"),
        ("matching:\n  suggest: 60\n", ":1: matching: needs suggest <= likely <= confident"),
        ("knowledge:\n  path: knowledge\n  wach: true\n", ":3: knowledge.wach: unknown setting"),
        ("followups:\n  retry_backoff_seconds: [60, -1]\n", ":2: followups.retry_backoff_seconds[1]"),
        ("safety:\n  region: mars\n", ":2: safety.region: must be one of uk, ie, us, ca, au, eu"),
    ],
)
def test_config_errors_are_one_line_with_the_line(tmp_path: Path, content: str, needle: str) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(content, encoding="utf-8")
    for args in (("--config", str(cfg), "ask", "--json", "hi"), ("ask", "--config", str(cfg), "--json", "hi")):
        res = runbot(*args)
        assert res.returncode == 1, res.stderr
        assert f"{cfg}{needle}" in res.stderr if needle.startswith(":") else needle in res.stderr, res.stderr
        assert "Traceback" not in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_config_is_taken_before_or_after_the_command(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("safety:\n  region: us\n", encoding="utf-8")
    for args in (("--config", str(cfg), "ask", "--json", "my groin is numb and i cant pee"),
                 ("ask", "--config", str(cfg), "--json", "my groin is numb and i cant pee")):
        res = runbot(*args)
        assert res.returncode == 0, res.stderr
        assert "911" in json.loads(res.stdout)["reply"]


@pytest.mark.slow
def test_missing_config_file_is_reported() -> None:
    res = runbot("--config", "/nonexistent/config.yaml", "ask", "--json", "hi")
    assert res.returncode == 1 and "not found" in res.stderr


@pytest.mark.slow
def test_missing_packages_get_an_install_hint_not_a_traceback() -> None:
    # -S hides site-packages, as when someone runs `python3 -m bot` before installing runbot
    res = subprocess.run(
        [sys.executable, "-S", "-m", "bot", "eval", str(DATA / "faq_dev.jsonl")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert res.returncode == 2
    assert "missing package(s)" in res.stderr and "pip install -e ." in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.slow
def test_a_reader_that_leaves_early_gets_no_traceback() -> None:
    # `runbot eval FILE | head -1`: the pipe closes while runbot is still writing the misses
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "eval", str(DATA / "faq_blind_a.jsonl")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0
    assert "Traceback" not in err and "BrokenPipe" not in err
