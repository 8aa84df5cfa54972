"""Deterministic synthetic text measured in the project's tokens.

Workload lengths are in tokens of inferplane's own tokenizer (`inferplane.tokenizer.get_tokenizer()`, the one the
simulator and the endpoint picker count and hash with), so "a 2,000-token system prompt" means the same thing to the
benchmark, the server's `usage.prompt_tokens` and the prefix-cache scorer. When that module is not importable the
counter falls back to its documented approximation, four characters per token.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from functools import lru_cache

# A small English vocabulary: realistic word lengths (about 4-5 characters with the space) without shipping a
# corpus. Text only needs to tokenise like prose; its meaning is irrelevant to a simulated server.
_WORDS = (
    "the of and to in is that it for as with was on be by at this are from or an have not they which one you "
    "had but all were we there can been has more if will their so what when would about into time some than "
    "them only other its new also then two may first any like now my such make over our even most after "
    "well way many must before back through years where much your good should because each those people "
    "state very work life just world both under never system data model request cache server token prefix "
    "route gateway pool replica latency batch queue memory block decode prefill answer question context "
    "policy network cluster service endpoint metric window budget stream engine kernel vector matrix layer"
).split()

TokenCounter = Callable[[str], int]


def _approximate_count(text: str) -> int:
    return math.ceil(len(text) / 4) if text else 0


@lru_cache(maxsize=1)
def token_counter() -> TokenCounter:
    """The project's token counter; resolved once because building a tokenizer may load a file."""
    try:
        from inferplane.tokenizer import get_tokenizer  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return _approximate_count
    tokenizer = get_tokenizer()
    for name in ("count", "count_tokens"):
        fn = getattr(tokenizer, name, None)
        if callable(fn):
            return lambda text, _fn=fn: int(_fn(text))
    encode = tokenizer.encode
    return lambda text: len(encode(text))


def _words(rng: random.Random, n: int) -> list[str]:
    return [rng.choice(_WORDS) for _ in range(n)]


def synth_text(n_tokens: int, rng: random.Random, counter: TokenCounter | None = None) -> str:
    """Text of `n_tokens` tokens (or the closest count at or below it that whole words allow), drawn from `rng`.

    The word stream is drawn once, then a binary search finds the longest prefix within the budget: the
    token count of a prefix of words never decreases as words are added.
    """
    if n_tokens <= 0:
        return ""
    count = counter or token_counter()
    # Over-draw: a word is at least one token in any sane tokenizer, so n_tokens words always suffice.
    words = _words(rng, n_tokens + 8)
    lo, hi = 1, len(words)
    best = 1
    while lo <= hi:
        mid = (lo + hi) // 2
        if count(" ".join(words[:mid])) <= n_tokens:
            best = mid
            lo = mid + 1
        else:
            hi = mid - 1
    return " ".join(words[:best])


def rng_for(seed: int, *parts: object) -> random.Random:
    """An independent, reproducible random stream for one item (a string seed hashes with SHA-512, so it is
    stable across processes and Python versions, unlike hash())."""
    return random.Random(":".join([str(seed), *map(str, parts)]))
