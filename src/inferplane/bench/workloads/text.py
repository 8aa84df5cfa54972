"""Deterministic synthetic text measured in the project's tokens.

Workload lengths are in tokens of inferplane's own tokenizer (`inferplane.tokenizer.get_tokenizer()`, the one the
simulator and the endpoint picker count and hash with), so "a 2,000-token system prompt" means the same thing to the
benchmark, the server's `usage.prompt_tokens` and the prefix-cache scorer.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import lru_cache

from inferplane.tokenizer import get_tokenizer

# A small English vocabulary: realistic word lengths (about 4-5 characters with the space) without shipping a
# corpus. Text only needs to tokenise like prose; its meaning is irrelevant to a simulated server.
_VOCABULARY = (
    "the of and to in is that it for as with was on be by at this are from or an have not they which one "
    "you had but all were we there can been has more if will their so what when would about into time "
    "some than them only other its new also then two may first any like now my such make over our even "
    "most after well way many must before back through years where much your good should because each "
    "those people state very work life just world both under never system data model request cache "
    "server token prefix route gateway pool replica latency batch queue memory block decode prefill "
    "answer question context policy network cluster service endpoint metric window budget stream engine "
    "kernel vector matrix layer"
)
_WORDS = tuple(_VOCABULARY.split())

TokenCounter = Callable[[str], int]


@lru_cache(maxsize=1)
def token_counter() -> TokenCounter:
    """The project's token counter; resolved once because building a tokenizer may load a file."""
    tokenizer = get_tokenizer()
    count = getattr(tokenizer, "count", None)
    if callable(count):
        return lambda text: int(count(text))
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
    best = 0
    while lo <= hi:
        mid = (lo + hi) // 2
        if count(" ".join(words[:mid])) <= n_tokens:
            best = mid
            lo = mid + 1
        else:
            hi = mid - 1
    if best == 0:  # even one word is over budget: shorten it (a tiny budget, e.g. one token)
        word = words[0]
        while len(word) > 1 and count(word) > n_tokens:
            word = word[:-1]
        return word
    return " ".join(words[:best])


def rng_for(seed: int, *parts: object) -> random.Random:
    """An independent, reproducible random stream for one item (a string seed hashes with SHA-512, so it is
    stable across processes and Python versions, unlike hash())."""
    return random.Random(":".join([str(seed), *map(str, parts)]))
