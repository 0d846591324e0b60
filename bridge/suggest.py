"""Which saved templates fit a customer's message (pure; docs/design.md, "The DM playbook").

BM25 over character 3–5-grams of each template's name and text (language-independent: no word lists, no
stemming), plus a prior from the templates agents chose after similar messages before (a second BM25 index
over those messages: each similar past message votes for the template sent after it). An index is built
once per set of templates and reused (:class:`Index`); scoring looks only at the message's rarest n-grams
(:data:`QUERY_GRAMS`) and skips n-grams most templates share, so a query costs about the same with ten
templates or ten thousand.
"""

from __future__ import annotations

import math
from array import array
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from bridge.inquiry import ngrams

MAX_MESSAGE = 2_000
K1, B = 1.2, 0.75
QUERY_GRAMS = 64
"""The message's n-grams looked up, rarest first."""
COMMON_SHARE = 0.05
"""An n-gram in more than this share of the documents (and more than :data:`COMMON_MIN` of them) is skipped."""
COMMON_MIN = 50
MIN_SCORE = 0.05
"""The least combined score (see :meth:`Suggester.rank`) worth showing."""
PRIOR_WEIGHT = 0.5
PRIOR_NEIGHBOURS = 10
SHOWN = 3


@dataclass(frozen=True)
class Suggestion:
    name: str
    score: float


class Index:
    """BM25 over character n-grams of a fixed list of documents, built once."""

    def __init__(self, documents: Sequence[str]) -> None:
        self.size = len(documents)
        building: dict[str, list[int]] = defaultdict(list)
        lengths = []
        for i, doc in enumerate(documents):
            grams = ngrams(doc)
            lengths.append(sum(grams.values()))
            for gram, count in grams.items():
                building[gram] += (i, count)
        # flat arrays (document, count, document, count …), not lists of tuples: millions of small objects
        # would make every garbage collection of the serving process walk them
        self.postings: dict[str, array[int]] = {g: array("I", p) for g, p in building.items()}
        self.lengths = lengths
        self.mean_length = (sum(lengths) / len(lengths)) if lengths else 0.0
        self.common = max(COMMON_MIN, int(COMMON_SHARE * self.size))
        self.norms = [K1 * (1 - B + B * n / self.mean_length) for n in lengths] if self.mean_length else []

    def idf(self, gram: str) -> float:
        df = len(self.postings.get(gram, ())) // 2
        return math.log(1 + (self.size - df + 0.5) / (df + 0.5))

    def query(self, text: str) -> tuple[dict[int, float], float]:
        """Each matching document's BM25 score, and the best score any document could get for this query
        (every looked-up n-gram matched at average length): scores divided by it fall in [0, 1]."""
        grams = ngrams(text[:MAX_MESSAGE])
        looked = [g for g in grams if 0 < len(self.postings.get(g, ())) <= 2 * self.common]
        looked.sort(key=lambda g: (len(self.postings[g]), g))
        looked = looked[:QUERY_GRAMS]
        scores: dict[int, float] = defaultdict(float)
        ceiling = 0.0
        for gram in looked:
            idf = self.idf(gram)
            ceiling += idf
            weight, norms = idf * (K1 + 1), self.norms
            posting = self.postings[gram]
            for doc, tf in zip(posting[::2], posting[1::2], strict=True):
                scores[doc] += weight * tf / (tf + norms[doc])
        # the ceiling over *all* the message's n-grams (also those no document has), so that a message
        # mostly unlike every template scores low
        unseen = [g for g in grams if g not in self.postings]
        ceiling = (ceiling + math.log(1 + self.size + 0.5) * min(len(unseen), QUERY_GRAMS)) * (K1 + 1) / 2
        return scores, ceiling


class Suggester:
    """The templates (name, text) and the agents' past choices (message, template name), indexed once."""

    def __init__(self, templates: Sequence[tuple[str, str]], choices: Sequence[tuple[str, str]] = ()) -> None:
        self.names = [name for name, _ in templates]
        self.index = Index([f"{name.replace('_', ' ').replace('-', ' ')} {text}" for name, text in templates])
        known = set(self.names)
        self.choices = [(message, name) for message, name in choices if name in known]
        self.past = Index([message for message, _ in self.choices])

    def rank(self, message: str, limit: int = SHOWN) -> list[Suggestion]:
        """Up to ``limit`` templates, best first (ties by name, so the same input ranks the same way), each
        scoring at least :data:`MIN_SCORE`: BM25 share of the best possible, plus :data:`PRIOR_WEIGHT` × the
        share of similar past messages' votes."""
        if not self.names or not message.strip():
            return []
        scores, ceiling = self.index.query(message)
        combined: dict[str, float] = {}
        for doc, score in scores.items():
            name = self.names[doc]
            combined[name] = max(combined.get(name, 0.0), score / ceiling if ceiling else 0.0)
        for name, vote in self.prior(message).items():
            combined[name] = combined.get(name, 0.0) + PRIOR_WEIGHT * vote
        ranked = sorted(combined.items(), key=lambda kv: (-kv[1], kv[0]))
        return [Suggestion(name, round(score, 6)) for name, score in ranked[:limit] if score >= MIN_SCORE]

    def prior(self, message: str) -> dict[str, float]:
        """For each template, how alike ``message`` is to the most similar past message it was chosen after
        (among the :data:`PRIOR_NEIGHBOURS` nearest), in [0, 1]."""
        if not self.choices:
            return {}
        scores, ceiling = self.past.query(message)
        if not ceiling:
            return {}
        votes: dict[str, float] = {}
        for doc, score in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:PRIOR_NEIGHBOURS]:
            name = self.choices[doc][1]
            votes[name] = max(votes.get(name, 0.0), score / ceiling)
        return votes
