"""Ranking metrics of the quality harness, over one ranked list of relevance flags."""

from collections.abc import Sequence


def precision_at(relevant: Sequence[bool], k: int) -> float:
    """The share of the first k results that are relevant (missing results count as misses)."""
    return sum(bool(flag) for flag in relevant[:k]) / k


def recall_at(relevant: Sequence[bool], k: int, total_relevant: int) -> float:
    """The share of all relevant items found in the first k results."""
    return sum(bool(flag) for flag in relevant[:k]) / total_relevant if total_relevant else 0.0


def average_precision(relevant: Sequence[bool], total_relevant: int) -> float:
    """Mean of precision at the rank of each relevant item; relevant items never returned count as 0."""
    found, total = 0, 0.0
    for rank, flag in enumerate(relevant, start=1):
        if flag:
            found += 1
            total += found / rank
    return total / total_relevant if total_relevant else 0.0
