"""Matching benchmark for issue 8: runbot's message path vs the bare rapidfuzz WRatio baseline.

Run from the repository root:  .venv/bin/python bench/bench_matching.py  (add --quick for a smoke run)

For N = 30, 1,000 and 10,000 synthetic FAQ entries x 5 phrasings (fixed seed) it writes a temporary knowledge folder
(the shipped triage, red flags and synonyms plus a generated faq-synthetic.yaml) and a noisy query set drawn from the
phrasings (typos, reordering, extra words). Every measurement runs in a fresh subprocess so resident memory is per N
and per system. It also times ``runbot ask --jsonl`` end to end over the shipped knowledge against the baseline over
the shipped phrasings, and the one-shot ``runbot ask --json`` wall time. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE = ROOT / "knowledge"
EVAL_FAQ = Path(__file__).resolve().parent.parent / "tests" / "data" / "dev" / "faq_dev.jsonl"
SHIPPED_FILES = ("triage.yaml", "synonyms.yaml", "chatter.yaml")
SEED = 8
PHRASINGS = 5

FILLER = (
    "lol mate honestly tbh anyone guys yesterday today again really always sometimes usually lately recently "
    "please help quick question any advice thoughts ideas"
).split()
TEMPLATES = (
    "why does my {a} {b} after {x}",
    "{a} and {b} when i {c}",
    "how do i stop {a} {c} during {x}",
    "is {b} {a} normal for {x}",
    "what helps with {a} {b} {c}",
    "my {c} {a} gets {b} on long {x}",
    "best way to deal with {b} {c}",
    "should i worry about {a} {c} {b}",
)


# ---------------------------------------------------------------------------------------------- data generation
def word_pool(detect: Any) -> list[str]:
    """Realistic vocabulary: the words of the shipped knowledge (back pain, running, training, treatment), minus
    stopwords, the words that trigger a red flag on their own and the names of other body parts (a message naming
    one gets the shipped pack's "I only cover lower back pain" reply, which a generic FAQ would not have)."""
    from bot.core.analysis import STOPWORDS
    from bot.core.scope import other_part

    text = " ".join(p.read_text(encoding="utf-8").lower() for p in sorted(KNOWLEDGE.glob("faq*.yaml")))
    text += " " + (KNOWLEDGE / "synonyms.yaml").read_text(encoding="utf-8").lower()
    words = sorted(set(re.findall(r"[a-z]{3,}", text)) - STOPWORDS - set(FILLER))
    return [w for w in words if detect(w) is None and other_part(w) is None]


def make_entries(n: int, pool: list[str], rng: random.Random, detect: Any) -> list[list[str]]:
    """n entries x PHRASINGS unique phrasings; each entry has 3 topic words, each phrasing uses them plus one
    random pool word, in a varied template."""
    # Zipf-like topic word choice: some words are common across the FAQ, most are rare
    weights = [1.0 / (i + 1) ** 0.6 for i in range(len(pool))]
    order = pool[:]
    rng.shuffle(order)
    seen: set[str] = set()
    out: list[list[str]] = []
    while len(out) < n:
        topic = rng.choices(order, weights=weights, k=3)
        if len(set(topic)) < 3:
            continue
        phrasings: list[str] = []
        tries = 0
        while len(phrasings) < PHRASINGS and tries < 50:
            tries += 1
            a, b, c = rng.sample(topic, 3)
            x = rng.choice(pool)
            p = rng.choice(TEMPLATES).format(a=a, b=b, c=c, x=x)
            if p in seen or detect(p) is not None:
                continue
            seen.add(p)
            phrasings.append(p)
        if len(phrasings) == PHRASINGS:
            out.append(phrasings)
    return out


def typo(word: str, rng: random.Random) -> str:
    if len(word) < 5:
        return word
    i = rng.randrange(1, len(word) - 1)
    op = rng.randrange(3)
    if op == 0:  # swap two neighbours
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if op == 1:  # drop a letter
        return word[:i] + word[i + 1 :]
    return word[:i] + rng.choice("aeiourstln") + word[i + 1 :]  # wrong letter


def noisy(phrasing: str, pool: list[str], rng: random.Random) -> str:
    """At least one of: a typo in one or two words, reordering, one or two extra words."""
    words = phrasing.split()
    ops = [op for op in ("typo", "reorder", "extra") if rng.random() < 0.6] or [rng.choice(("typo", "reorder"))]
    if "typo" in ops:
        for i in rng.sample(range(len(words)), k=min(len(words), rng.choice((1, 1, 2)))):
            words[i] = typo(words[i], rng)
    if "reorder" in ops:
        if rng.random() < 0.5 and len(words) > 3:
            cut = rng.randrange(1, len(words))
            words = words[cut:] + words[:cut]
        else:
            i = rng.randrange(len(words) - 1)
            words[i], words[i + 1] = words[i + 1], words[i]
    if "extra" in ops:
        for _ in range(rng.choice((1, 2))):
            words.insert(rng.randrange(len(words) + 1), rng.choice(FILLER if rng.random() < 0.5 else pool))
    return " ".join(words)


def make_queries(entries: list[list[str]], count: int, pool: list[str], rng: random.Random, detect: Any) -> list[
    tuple[str, int]
]:
    out: list[tuple[str, int]] = []
    while len(out) < count:
        e = rng.randrange(len(entries))
        q = noisy(rng.choice(entries[e]), pool, rng)
        if detect(q) is None:
            out.append((q, e))
    return out


def entry_id(i: int) -> str:
    return f"syn-{i:05d}"


def write_knowledge(folder: Path, entries: list[list[str]]) -> None:
    for name in SHIPPED_FILES:
        shutil.copy(KNOWLEDGE / name, folder / name)
    shutil.copytree(KNOWLEDGE / "red_flags", folder / "red_flags")
    # the shipped triage links FAQ ids, so the shipped FAQ files come along (their entries are not queried)
    for path in KNOWLEDGE.glob("faq*.yaml"):
        shutil.copy(path, folder / path.name)
    lines = ["entries:"]
    for i, phrasings in enumerate(entries):
        lines.append(f"  - id: {entry_id(i)}")
        lines.append("    questions:")
        lines.extend(f"      - {json.dumps(p)}" for p in phrasings)
        lines.append(f"    answer: Synthetic answer number {i}.")
    (folder / "faq-synthetic.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------------------------- measuring (child)
def rss_mb() -> tuple[float, float]:
    """(current VmRSS, peak VmHWM) in MB of this process."""
    now = peak = 0.0
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                now = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return now, peak


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def summary(lat: list[float], wall: float) -> dict[str, float]:
    return {"p50_ms": pct(lat, 0.5) * 1e3, "p99_ms": pct(lat, 0.99) * 1e3, "per_s": len(lat) / wall}


async def run_engine(folder: Path, queries: list[tuple[str, int]], warm: list[str], workdir: Path) -> dict[str, Any]:
    from bot.config import Settings
    from bot.core.engine import Engine, EngineOptions
    from bot.core.knowledge import KnowledgeRef, load_knowledge
    from bot.core.messages import IncomingMessage
    from bot.storage.sqlite import SQLiteStore as Store

    base_rss, _ = rss_mb()
    t0 = time.perf_counter()
    # the synthetic folders have no FAQ model: with the embeddings extra installed every phrasing is embedded at load
    k = load_knowledge(folder, embeddings=os.environ.get("RUNBOT_BENCH_EMBEDDINGS", "1") != "0")
    load = time.perf_counter() - t0
    rss_loaded, _ = rss_mb()
    res: dict[str, Any] = {"load_s": load, "rss_base_mb": base_rss, "rss_loaded_mb": rss_loaded}
    options = EngineOptions(first_notice=False, rate_limit=False)
    for kind in ("memory", "file"):
        path = ":memory:" if kind == "memory" else str(workdir / "bench.db")
        store = Store(path)
        await store.open()
        engine = Engine(KnowledgeRef(k), store, Settings(), options=options)
        for i, text in enumerate(warm):
            await engine.handle(IncomingMessage("bench", f"u{i % 200}", f"u{i % 200}", text=text))
        lat: list[float] = []
        correct: list[bool] = []
        hits = answered = 0
        start = time.perf_counter()
        for i, (text, truth) in enumerate(queries):
            msg = IncomingMessage("bench", f"u{i % 200}", f"u{i % 200}", text=text)
            t = time.perf_counter()
            outcome = await engine.handle(msg)
            lat.append(time.perf_counter() - t)
            guess = outcome.faq_id if outcome.kind == "answer" else (outcome.alternatives or (None,))[0]
            answered += outcome.kind == "answer"
            hits += outcome.kind == "answer" and outcome.faq_id == entry_id(truth)
            correct.append(guess == entry_id(truth))
        await store.flush()
        wall = time.perf_counter() - start
        await store.close()
        res[kind] = summary(lat, wall)
        if kind == "memory":
            res["top1"] = sum(correct) / len(queries)
            res["answered_correct"] = hits / len(queries)
            res["answered"] = answered / len(queries)
            res["correct"] = correct
    res["rss_peak_mb"] = rss_mb()[1]
    return res


def run_baseline(folder: Path, queries: list[tuple[str, int]]) -> dict[str, Any]:
    import yaml
    from rapidfuzz import fuzz, process

    base_rss, _ = rss_mb()
    t0 = time.perf_counter()
    data = yaml.load((folder / "faq-synthetic.yaml").read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    phrasings: list[str] = []
    owner: list[str] = []
    for e in data["entries"]:
        for q in e["questions"]:
            phrasings.append(q)
            owner.append(e["id"])
    load = time.perf_counter() - t0
    rss_loaded, _ = rss_mb()
    process.extractOne("warm up", phrasings, scorer=fuzz.WRatio)
    lat: list[float] = []
    correct: list[bool] = []
    start = time.perf_counter()
    for text, truth in queries:
        t = time.perf_counter()
        best = process.extractOne(text, phrasings, scorer=fuzz.WRatio)
        lat.append(time.perf_counter() - t)
        correct.append(best is not None and owner[best[2]] == entry_id(truth))
    wall = time.perf_counter() - start
    return {
        "load_s": load,
        "rss_base_mb": base_rss,
        "rss_loaded_mb": rss_loaded,
        "rss_peak_mb": rss_mb()[1],
        "memory": summary(lat, wall),
        "top1": sum(correct) / len(correct),
        "correct": correct,
        "phrasings": len(phrasings),
    }


def shipped_texts(count: int) -> list[str]:
    """Realistic messages for the shipped knowledge: the dev eval texts, repeated to ``count``."""
    texts = [json.loads(line)["text"] for line in EVAL_FAQ.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [texts[i % len(texts)] for i in range(count)]


def run_shipped_baseline(count: int) -> dict[str, Any]:
    from rapidfuzz import fuzz, process

    from bot.core.knowledge import load_knowledge

    k = load_knowledge(KNOWLEDGE)
    phrasings = [q for e in k.entries.values() for q in e.questions]
    texts = shipped_texts(count)
    process.extractOne("warm up", phrasings, scorer=fuzz.WRatio)
    lat: list[float] = []
    start = time.perf_counter()
    for text in texts:
        t = time.perf_counter()
        process.extractOne(text, phrasings, scorer=fuzz.WRatio)
        lat.append(time.perf_counter() - t)
    wall = time.perf_counter() - start
    return {"phrasings": len(phrasings), **summary(lat, wall)}


def child(args: argparse.Namespace) -> None:
    if args.child == "shipped-baseline":
        print(json.dumps(run_shipped_baseline(args.queries)))
        return
    folder = Path(args.folder)
    spec = json.loads((folder / "bench-queries.json").read_text(encoding="utf-8"))
    queries = [(q, e) for q, e in spec["queries"]][: args.queries]
    if args.child == "engine":
        with tempfile.TemporaryDirectory() as tmp:
            res = asyncio.run(run_engine(folder, queries, spec["warm"], Path(tmp)))
    else:
        res = run_baseline(folder, queries)
    print(json.dumps(res))


# ---------------------------------------------------------------------------------------------- orchestration
def sub(*argv: str, stdin: str | None = None) -> tuple[str, float]:
    t = time.perf_counter()
    done = subprocess.run(
        argv, input=stdin, capture_output=True, text=True, check=True, cwd=ROOT
    )
    return done.stdout, time.perf_counter() - t


def measure_n(n: int, q_engine: int, q_base: int, seed: int) -> dict[str, Any]:
    from bot.core.knowledge import load_knowledge

    detect = load_knowledge(KNOWLEDGE).red_flags.detect
    rng = random.Random(seed * 1_000_003 + n)
    pool = word_pool(detect)
    entries = make_entries(n, pool, rng, detect)
    queries = make_queries(entries, max(q_engine, q_base), pool, rng, detect)
    warm = [q for q, _ in make_queries(entries, 50, pool, random.Random(seed + 1), detect)]
    me = sys.executable
    with tempfile.TemporaryDirectory(prefix=f"bench-{n}-") as tmp:
        folder = Path(tmp)
        write_knowledge(folder, entries)
        (folder / "bench-queries.json").write_text(json.dumps({"queries": queries, "warm": warm}), encoding="utf-8")
        out, _ = sub(me, __file__, "--child", "engine", "--folder", tmp, "--queries", str(q_engine))
        eng = json.loads(out)
        out, _ = sub(me, __file__, "--child", "baseline", "--folder", tmp, "--queries", str(q_base))
        base = json.loads(out)
    shared = min(len(eng["correct"]), len(base["correct"]))
    eng["top1_shared"] = sum(eng["correct"][:shared]) / shared
    base["top1_shared"] = sum(base["correct"][:shared]) / shared
    return {"n": n, "pool": len(pool), "engine": eng, "baseline": base, "q_engine": q_engine, "q_base": q_base,
            "shared": shared}


def measure_shipped(count: int, oneshot_runs: int) -> dict[str, Any]:
    runbot = str(Path(sys.executable).with_name("runbot"))
    texts = shipped_texts(count)
    stdin = "".join(json.dumps({"text": t}) + "\n" for t in texts)
    # end to end: process start, knowledge load, every line, exit
    out, wall = sub(runbot, "ask", "--knowledge", str(KNOWLEDGE), "--jsonl", stdin=stdin)
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert len(lines) == count, f"runbot ask --jsonl answered {len(lines)} of {count} lines"
    _, startup = sub(runbot, "ask", "--knowledge", str(KNOWLEDGE), "--jsonl", stdin="")
    out, _ = sub(sys.executable, __file__, "--child", "shipped-baseline", "--queries", str(count))
    base = json.loads(out)
    oneshot = []
    for _ in range(oneshot_runs):
        _, t = sub(runbot, "ask", "--knowledge", str(KNOWLEDGE), "--json", "my lower back aches after long runs")
        oneshot.append(t)
    return {
        "count": count,
        "e2e_wall_s": wall,
        "e2e_per_s": count / wall,
        "startup_s": startup,
        "steady_per_s": count / max(1e-9, wall - startup),
        "baseline": base,
        "oneshot_s": statistics.median(oneshot),
        "oneshot_all": oneshot,
    }


def machine() -> str:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores (nproc {len(os.sched_getaffinity(0))}), {model}, Python {sys.version.split()[0]}"


def table(results: list[dict[str, Any]], shipped: dict[str, Any]) -> str:
    rows = [
        "| N entries | phrasings | system | load s | p50 ms | p99 ms | msg/s mem | msg/s file | RSS MB "
        "(peak) | top-1 | queries |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        e, b = r["engine"], r["baseline"]
        rows.append(
            f"| {r['n']:,} | {b['phrasings']:,} | engine | {e['load_s']:.2f} | {e['memory']['p50_ms']:.2f} | "
            f"{e['memory']['p99_ms']:.2f} | {e['memory']['per_s']:,.0f} | {e['file']['per_s']:,.0f} | "
            f"{e['rss_peak_mb']:.0f} | {e['top1_shared']:.3f} ({e['top1']:.3f} on {r['q_engine']}) | {r['q_engine']} |"
        )
        rows.append(
            f"| {r['n']:,} | {b['phrasings']:,} | WRatio | {b['load_s']:.2f} | {b['memory']['p50_ms']:.2f} | "
            f"{b['memory']['p99_ms']:.2f} | {b['memory']['per_s']:,.0f} | - | {b['rss_peak_mb']:.0f} | "
            f"{b['top1_shared']:.3f} | {r['q_base']} |"
        )
        rows.append(
            f"| {r['n']:,} | | engine/WRatio | | {e['memory']['p50_ms'] / b['memory']['p50_ms']:.3f} | "
            f"{e['memory']['p99_ms'] / b['memory']['p99_ms']:.3f} | "
            f"{e['memory']['per_s'] / b['memory']['per_s']:.2f}x | | | | |"
        )
    s = shipped
    rows += [
        "",
        f"Shipped knowledge, {s['count']} messages (dev eval texts repeated), {s['baseline']['phrasings']} phrasings:",
        f"- runbot ask --jsonl end to end: {s['e2e_wall_s']:.2f} s wall -> {s['e2e_per_s']:,.0f} msg/s "
        f"(start-up {s['startup_s']:.2f} s; {s['steady_per_s']:,.0f} msg/s after start-up)",
        f"- bare WRatio extractOne over the shipped phrasings: {s['baseline']['per_s']:,.0f} msg/s "
        f"(p50 {s['baseline']['p50_ms']:.3f} ms, p99 {s['baseline']['p99_ms']:.3f} ms)",
        f"- runbot ask --json one-shot wall: median {s['oneshot_s']:.3f} s of "
        f"{', '.join(f'{t:.3f}' for t in s['oneshot_all'])}",
    ]
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--child", choices=["engine", "baseline", "shipped-baseline"], help=argparse.SUPPRESS)
    p.add_argument("--folder", help=argparse.SUPPRESS)
    p.add_argument("--queries", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--quick", action="store_true", help="small query counts (a smoke run, not for the README)")
    p.add_argument(
        "--no-embeddings",
        action="store_true",
        help="the synthetic rows without the embeddings extra, even if it is installed",
    )
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--json", metavar="FILE", help="also write the raw figures to this file")
    args = p.parse_args()
    if args.no_embeddings:
        os.environ["RUNBOT_BENCH_EMBEDDINGS"] = "0"  # read by the engine's child process
    if args.child:
        child(args)
        return
    t0 = time.perf_counter()
    plan = [(30, 2000, 2000), (1_000, 2000, 1000), (10_000, 1000, 1000)]
    if args.quick:
        plan = [(30, 200, 200), (1_000, 200, 100), (10_000, 100, 20)]
    print(f"machine: {machine()}", flush=True)
    results = []
    for n, q_engine, q_base in plan:
        results.append(measure_n(n, q_engine, q_base, args.seed))
        print(f"  N={n:,} done at {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    shipped = measure_shipped(300 if args.quick else 3000, 3 if args.quick else 5)
    print(table(results, shipped))
    print(f"\ntotal bench time {time.perf_counter() - t0:.0f} s")
    if args.json:
        for r in results:
            r["engine"].pop("correct")
            r["baseline"].pop("correct")
        Path(args.json).write_text(json.dumps({"machine": machine(), "results": results, "shipped": shipped},
                                              indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
