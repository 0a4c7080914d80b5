"""Tokens and embeddings as every fake provider makes them, so that the same text costs and
embeds the same whichever fake answers: a token is a whitespace-separated word, and an
embedding is drawn from the text's hash (the same text, the same vector)."""

from __future__ import annotations

import hashlib


def words(text: str) -> list[str]:
    return text.split()


def vector(text: str, dimensions: int) -> list[float]:
    seed = hashlib.sha256(text.encode()).digest()
    return [((seed[i % 32] + i) % 256) / 255.0 - 0.5 for i in range(dimensions)]
