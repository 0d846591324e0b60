"""Suggested replies: top-3 hit rate on a held-out split, and latency with 1,000 and 10,000 templates.

``python -m bench.suggest [--seed N]``. The labelled set is ``bench/data/suggest_*.tsv``: 20 templates of a
shop's desk and 200 customer messages written against them (10 a template: 5–6 English, and Spanish,
French, German, Portuguese), by hand for this benchmark. Split: per template, messages 0, 2, 4, … are the
history (agents chose that template after them: the prior), 1, 3, 5, … are held out and ranked.
Latency: the 20 templates plus synthetic ones (words of the real templates shuffled, seeded) up to 1,000 and
10,000; the index is built once (its time is reported) and each held-out message is ranked.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path

from bridge.suggest import Suggester

DATA = Path(__file__).parent / "data"


def load() -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
    templates = [tuple(line.split("\t", 1)) for line in (DATA / "suggest_templates.tsv").read_text().splitlines()]
    messages = [tuple(line.split("\t", 2)) for line in (DATA / "suggest_messages.tsv").read_text().splitlines()]
    return [(n, t) for n, t in templates], [(n, lang, m) for n, lang, m in messages]


def split(messages: list[tuple[str, str, str]]) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
    seen: dict[str, int] = {}
    history, held_out = [], []
    for name, lang, text in messages:
        i = seen.get(name, 0)
        seen[name] = i + 1
        if i % 2 == 0:
            history.append((text, name))
        else:
            held_out.append((name, lang, text))
    return history, held_out


def hit_rate(suggester: Suggester, held_out: list[tuple[str, str, str]], k: int) -> tuple[float, dict[str, float]]:
    hits: dict[str, list[bool]] = {}
    for name, lang, text in held_out:
        ranked = [s.name for s in suggester.rank(text, limit=k)]
        hits.setdefault(lang, []).append(name in ranked)
    every = [h for v in hits.values() for h in v]
    return sum(every) / len(every), {lang: sum(v) / len(v) for lang, v in sorted(hits.items())}


def synthetic(templates: list[tuple[str, str]], count: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    words = [w for _, text in templates for w in text.split()]
    out = list(templates)
    while len(out) < count:
        out.append((f"synthetic-{len(out)}", " ".join(rng.choices(words, k=rng.randint(15, 45)))))
    return out


def latency(
    templates: list[tuple[str, str]], history: list[tuple[str, str]], queries: list[str], count: int, seed: int
) -> tuple[float, float, float]:
    """Index build seconds, p50 and p99 milliseconds of one ``rank``."""
    many = synthetic(templates, count, seed)
    start = time.perf_counter()
    suggester = Suggester(many, history)
    built = time.perf_counter() - start
    times = []
    for _ in range(5):
        for text in queries:
            t0 = time.perf_counter()
            suggester.rank(text)
            times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return built, statistics.median(times), times[int(len(times) * 0.99) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args()
    templates, messages = load()
    history, held_out = split(messages)
    print(f"labelled set: {len(templates)} templates, {len(messages)} messages; held out {len(held_out)}")
    for label, past in (("BM25 alone", []), ("BM25 + prior (history half)", history)):
        suggester = Suggester(templates, past)
        top3, by_lang = hit_rate(suggester, held_out, 3)
        top1, _ = hit_rate(suggester, held_out, 1)
        langs = ", ".join(f"{lang} {rate:.0%}" for lang, rate in by_lang.items())
        print(f"{label:30} top-1 {top1:.1%}  top-3 {top3:.1%}  ({langs})")
    queries = [text for _, _, text in held_out]
    for count in (1_000, 10_000):
        built, p50, p99 = latency(templates, history, queries, count, args.seed)
        print(f"{count:>6,} templates: index built in {built:.2f} s; rank p50 {p50:.2f} ms, p99 {p99:.2f} ms")


if __name__ == "__main__":
    main()
