"""The embeddings extra side by side with the lexical matcher alone (issue 15): end-to-end throughput of
``runbot ask --jsonl`` on the shipped knowledge against bare ``extractOne(WRatio)`` over the same phrasings, one-shot
``runbot ask --json`` wall time and peak memory, each with ``matching.embeddings`` true and false (false loads no
embedder: the cost of an install without the extra). Runs are interleaved so the machine's drifting load falls on
all alike; medians are printed.

    .venv/bin/python bench/bench_embeddings.py            # about 2 minutes
    .venv/bin/python bench/bench_embeddings.py --runs 1   # smoke run

Not part of the test suite. Run from the repository root with the embeddings extra installed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVAL_FAQ = ROOT / "tests" / "data" / "dev" / "faq_dev.jsonl"
LINES = 3000
ONE_SHOT = "why does my lower back hurt after running"


def run(argv: list[str], stdin: str | None = None) -> tuple[float, int]:
    """Wall seconds and peak resident memory (MB) of one process."""
    start = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-f", "%M", *argv], input=stdin, capture_output=True, text=True, check=True, cwd=ROOT
    )
    wall = time.perf_counter() - start
    return wall, int(done.stderr.strip().splitlines()[-1]) // 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    texts = [json.loads(line)["text"] for line in EVAL_FAQ.read_text(encoding="utf-8").splitlines() if line.strip()]
    lines = "".join(json.dumps({"text": texts[i % len(texts)]}) + "\n" for i in range(LINES))
    me = sys.executable
    figures: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        configs = {}
        for mode in ("on", "off"):
            path = Path(tmp) / f"{mode}.yaml"
            path.write_text(f"matching:\n  embeddings: {'true' if mode == 'on' else 'false'}\n", encoding="utf-8")
            configs[mode] = str(path)
        for _ in range(args.runs):
            for mode, config in configs.items():
                wall, rss = run([me, "-m", "bot", "--config", config, "ask", "--jsonl"], stdin=lines)
                empty, _ = run([me, "-m", "bot", "--config", config, "ask", "--jsonl"], stdin="")
                figures.setdefault(f"jsonl msg/s ({mode})", []).append(LINES / (wall - empty))
                figures.setdefault(f"jsonl peak MB ({mode})", []).append(rss)
                shots = sorted(
                    run([me, "-m", "bot", "--config", config, "ask", "--json", ONE_SHOT])[0] for _ in range(5)
                )
                figures.setdefault(f"one-shot ask s ({mode})", []).append(shots[2])
            out = subprocess.run(
                [me, "bench/bench_matching.py", "--child", "shipped-baseline", "--queries", str(LINES)],
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
            )
            figures.setdefault("bare WRatio msg/s", []).append(json.loads(out.stdout)["per_s"])
    for name, values in figures.items():
        shown = " / ".join(f"{v:.3g}" for v in values)
        print(f"{name:28s} median {statistics.median(values):8.3g}   runs {shown}")


if __name__ == "__main__":
    main()
