"""Numbers about the generated data, for ``sftlearn data --stats`` and the notebooks.

``corpus_stats()`` generates the default corpus, every SFT split and every
labelled set, timing each, and returns a plain dict; ``format_stats()`` turns
it into a short report. The "majority answer rate" of a family is the share of
its most common answer on the test split: what a model that always gives the
same answer would score.
"""

from __future__ import annotations

import time
from collections import Counter

from .charset import alphabet
from .labelled import entity_tagging, sentiment_classification, translation_pairs
from .sft import sft_examples
from .splits import PLAIN_SPLITS, SFT_SPLITS
from .stories import pretraining_text
from .tasks import TASK_FAMILIES


def corpus_stats(n_chars: int = 1_000_000, seed: int = 0) -> dict:
    """Generate the default data once and describe it (takes a couple of seconds)."""
    t0 = time.perf_counter()
    text = pretraining_text(n_chars, seed=seed)
    corpus_seconds = time.perf_counter() - t0
    blocks = text.split("\n\n") if text else []
    bilingual = sum(1 for b in blocks if "。" in b)

    t0 = time.perf_counter()
    by_split = {split: sft_examples(split, seed=seed) for split in SFT_SPLITS}
    sft_seconds = time.perf_counter() - t0
    counts = {f: {s: sum(ex.family == f for ex in by_split[s]) for s in SFT_SPLITS} for f in TASK_FAMILIES}
    majority = {}
    for f in TASK_FAMILIES:
        answers = Counter(ex.answer for ex in by_split["test"] if ex.family == f)
        majority[f] = answers.most_common(1)[0][1] / sum(answers.values()) if answers else 0.0
    all_examples = [ex for exs in by_split.values() for ex in exs]
    longest = max((len(ex.prompt) + len(ex.answer) for ex in all_examples), default=0)

    t0 = time.perf_counter()
    labelled = {
        name: {split: len(fn(split, seed=seed)) for split in PLAIN_SPLITS}
        for name, fn in (
            ("sentiment_classification", sentiment_classification),
            ("entity_tagging", entity_tagging),
            ("translation_pairs", translation_pairs),
        )
    }
    labelled_seconds = time.perf_counter() - t0

    return {
        "seed": seed,
        "corpus_chars": len(text),
        "corpus_stories": len(blocks),
        "corpus_bilingual_blocks": bilingual,
        "corpus_seconds": corpus_seconds,
        "alphabet_size": len(alphabet()),
        "sft_examples": counts,
        "sft_max_chars": longest,
        "sft_majority_answer_rate": majority,
        "sft_seconds": sft_seconds,
        "labelled": labelled,
        "labelled_seconds": labelled_seconds,
    }


def format_stats(stats: dict | None = None) -> str:
    """A printable report of ``corpus_stats()`` (computed now if not given)."""
    s = corpus_stats() if stats is None else stats
    lines = [
        f"pretraining corpus: {s['corpus_chars']:,} chars, {s['corpus_stories']:,} blocks "
        f"({s['corpus_bilingual_blocks']:,} bilingual), made in {s['corpus_seconds']:.2f} s",
        f"alphabet: {s['alphabet_size']} characters",
        f"SFT examples (made in {s['sft_seconds']:.2f} s; longest prompt+answer {s['sft_max_chars']} chars):",
        "  " + f"{'family':<12}" + "".join(f"{split:>14}" for split in SFT_SPLITS) + f"{'majority':>10}",
    ]
    for family, per_split in s["sft_examples"].items():
        row = "".join(f"{per_split[split]:>14,}" for split in SFT_SPLITS)
        lines.append(f"  {family:<12}{row}{s['sft_majority_answer_rate'][family]:>10.0%}")
    lines.append(f"labelled sets (made in {s['labelled_seconds']:.2f} s):")
    for name, per_split in s["labelled"].items():
        sizes = ", ".join(f"{split} {n:,}" for split, n in per_split.items())
        lines.append(f"  {name}: {sizes}")
    return "\n".join(lines)
