"""`runbot ask --jsonl`: any bad line is one error line and the batch goes on; stdin is read at most a bounded
number of lines ahead of the answers."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys

import pytest
from support import KNOWLEDGE, ROOT

from bot.cli import ask as cli

QUESTION = "why does my lower back hurt after running"


def _run(stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "bot", "ask", "--knowledge", str(KNOWLEDGE), "--jsonl"],
        input=stdin, capture_output=True, timeout=120, cwd=ROOT, env=env, check=False,
    )


@pytest.mark.slow
def test_every_bad_line_is_its_own_error_and_the_batch_goes_on() -> None:
    good = json.dumps({"text": QUESTION})
    lines = [
        good,
        "[" * 3000 + "]" * 3000,  # nesting deeper than the parser's recursion limit
        '{"text": ' + "[" * 3000 + "]" * 3000 + "}",
        "{not json",
        "42",
        '{"text": 7}',
        '{"text": "' + "x" * (cli.MAX_LINE_CHARS + 10) + '"}',  # too long to read whole
        good,
    ]
    done = _run(("\n".join(lines) + "\n").encode())
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert b"Traceback" not in done.stderr
    out = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert len(out) == len(lines)
    assert out[0]["faq_id"] == out[-1]["faq_id"] == "back-pain-causes"
    for n, row in enumerate(out[1:-1], start=2):
        assert set(row) == {"error"} and row["error"].startswith(f"line {n}: "), row
    assert "longer than" in out[6]["error"]


class _EndlessInput(io.TextIOBase):
    """stdin from a producer far faster than the answers: counts the lines handed out."""

    def __init__(self, total: int) -> None:
        self.read_lines = 0
        self.total = total

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        if self.read_lines >= self.total:
            return ""
        self.read_lines += 1
        return json.dumps({"text": f"line {self.read_lines}"}) + "\n"


async def test_stdin_is_read_a_bounded_number_of_lines_ahead() -> None:
    stream = _EndlessInput(total=cli.MAX_QUEUED_LINES * 5)
    lines = cli.stdin_lines(stream)
    for _ in range(300):  # nobody reads: the thread fills the queue, then waits for room
        if stream.read_lines >= cli.MAX_QUEUED_LINES:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # time to read thousands more lines if it did not wait
    assert cli.MAX_QUEUED_LINES <= stream.read_lines <= cli.MAX_QUEUED_LINES + 1
    got = 0
    while await lines.get() is not None:
        got += 1
    assert got == stream.total == stream.read_lines  # nothing lost once the reader keeps up
