"""The kind of inquiry a customer's first message is (pure; docs/design.md, "The DM playbook").

``suggest(text, rules, model)``: the ``[[types]] keywords`` first (whole words, any case, any script; in
scripts written without spaces — Chinese, Japanese — a keyword matches inside the text), then a multinomial
naive Bayes over character 3–5-grams trained on the team's own confirmed types. Both abstain (``None``) when
unsure: no keyword, too few examples, a text whose n-grams the model has mostly never seen, or a margin
between the two best types below :data:`MARGIN`. No cloud, no downloaded weights: the model is the counts.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

MAX_TEXT = 2_000
"""Characters of a message kept as an example and looked at (the start of a message says what it is about)."""
NGRAMS = (3, 4, 5)
MIN_PER_TYPE = 3
"""Examples a type needs before the model suggests it."""
MIN_TYPES = 2
"""The model suggests nothing until at least this many types have enough examples."""
MIN_KNOWN = 0.35
"""Share of the message's n-grams the model must have seen (garbage and unknown scripts abstain)."""
MARGIN = 0.02
"""Mean log-likelihood per n-gram by which the best type must beat the second (nats)."""
ALPHA = 0.1
"""Additive smoothing."""

Rules = Mapping[str, Sequence[str]]
"""Type name → its keywords, in ``[[types]]`` order (the first type wins a tie)."""

_UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f]")


def normalize(text: str) -> str:
    """Any case, any spacing: casefolded, whitespace runs as one space, cut at :data:`MAX_TEXT`."""
    return " ".join(text[:MAX_TEXT].casefold().split())


def ngrams(text: str) -> Counter[str]:
    """Character 3–5-grams of the normalized text padded with a space (word starts and ends count)."""
    padded = f" {normalize(text)} "
    found: Counter[str] = Counter()
    if not padded.strip():
        return found
    for n in NGRAMS:
        found.update(padded[i : i + n] for i in range(len(padded) - n + 1))
    return found


def _keyword_pattern(keyword: str) -> re.Pattern[str] | None:
    words = normalize(keyword).split()
    if not words:
        return None
    body = r"\s+".join(re.escape(w) for w in words)
    start = "" if _UNSPACED.match(words[0][0]) else r"(?<!\w)"
    end = "" if _UNSPACED.match(words[-1][-1]) else r"(?!\w)"
    return re.compile(start + body + end)


@dataclass(frozen=True)
class KeywordRules:
    """``[[types]] keywords`` compiled once."""

    patterns: tuple[tuple[str, tuple[re.Pattern[str], ...]], ...]

    @classmethod
    def of(cls, rules: Rules) -> KeywordRules:
        compiled = []
        for name, keywords in rules.items():
            found = (_keyword_pattern(k) for k in keywords)
            compiled.append((name, tuple(p for p in found if p is not None)))
        return cls(tuple(compiled))

    def match(self, text: str) -> str | None:
        """The type with the most distinct keywords in ``text`` (the first in order on a tie), or None."""
        clean = normalize(text)
        best, best_hits = None, 0
        for name, patterns in self.patterns:
            hits = sum(1 for p in patterns if p.search(clean))
            if hits > best_hits:
                best, best_hits = name, hits
        return best


@dataclass
class Model:
    """Multinomial naive Bayes over character n-grams, trained on ``(text, type)`` examples."""

    counts: dict[str, Counter[str]] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)
    examples: Counter[str] = field(default_factory=Counter)
    vocabulary: set[str] = field(default_factory=set)

    @classmethod
    def train(cls, examples: Iterable[tuple[str, str]]) -> Model:
        model = cls()
        for text, kind in examples:
            model.add(text, kind)
        return model

    def add(self, text: str, kind: str) -> None:
        grams = ngrams(text)
        if not grams:
            return
        self.counts.setdefault(kind, Counter()).update(grams)
        self.totals[kind] = self.totals.get(kind, 0) + sum(grams.values())
        self.examples[kind] += 1
        self.vocabulary.update(grams)

    def scores(self, text: str) -> dict[str, float]:
        """Each trained type's mean log-likelihood per n-gram of ``text`` plus its prior share; {} when the
        model has too little to go on."""
        ready = [k for k, n in self.examples.items() if n >= MIN_PER_TYPE]
        grams = ngrams(text)
        total = sum(grams.values())
        if len(ready) < MIN_TYPES or total == 0:
            return {}
        known = sum(c for g, c in grams.items() if g in self.vocabulary)
        if known / total < MIN_KNOWN:
            return {}
        size = len(self.vocabulary) + 1
        n_examples = sum(self.examples[k] for k in ready)
        result = {}
        for kind in ready:
            counts, denominator = self.counts[kind], self.totals[kind] + ALPHA * size
            loglik = sum(c * math.log((counts.get(g, 0) + ALPHA) / denominator) for g, c in grams.items())
            result[kind] = loglik / total + math.log(self.examples[kind] / n_examples) / total
        return result

    def predict(self, text: str) -> str | None:
        ranked = sorted(self.scores(text).items(), key=lambda kv: (-kv[1], kv[0]))
        if not ranked or (len(ranked) > 1 and ranked[0][1] - ranked[1][1] < MARGIN):
            return None
        return ranked[0][0]


def suggest(text: str, rules: KeywordRules | Rules, model: Model | None) -> str | None:
    """The type to suggest for a first message, or None (abstain)."""
    compiled = rules if isinstance(rules, KeywordRules) else KeywordRules.of(rules)
    by_keyword = compiled.match(text)
    if by_keyword is not None:
        return by_keyword
    return model.predict(text) if model is not None else None
