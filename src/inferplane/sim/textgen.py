"""What the simulator "generates": the prompt back (`echo`) or random English words (`random`), as token ids.

The whole output is planned when a request arrives (the engine only decides *when* each token comes out), so the
number of tokens and the finish reason are known up front: `length` when max_tokens cut the plan, else `stop`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from inferplane.tokenizer import Tokenizer

_WORD_TEXT = (
    "the of and to in a is that for it as was with be by on not he this are or his from at which but have "
    "an they you were her she there one all we their been has when who will more no if out so said what "
    "up its about into than them can only other new some could time these two may then do first any my "
    "now such like our over man me even most made after also did many before must through back years "
    "where much your way well down should because each just those people how too little state good very "
    "make world still own see men work long get here between both life being under never day same another "
    "know while last might us great old year off come since against go came right used take three cache "
    "prefix token model server route queue batch block "
)
_WORDS = _WORD_TEXT.split()

MEAN_NATURAL_LENGTH = 128
"""Mean output length (tokens) of a random-mode answer that is not cut by max_tokens (exponential distribution)."""


@dataclass(frozen=True, slots=True)
class Plan:
    token_ids: list[int]
    finish_reason: str  # "stop" | "length"


class TextGenerator:
    def __init__(self, tokenizer: Tokenizer, mode: str = "random", seed: int | None = None) -> None:
        if mode not in ("random", "echo"):
            raise ValueError(f"unknown mode {mode!r} (echo | random)")
        self.tokenizer = tokenizer
        self.mode = mode
        self._rng = random.Random(seed)
        self._vocab: list[int] = []
        for word in _WORDS:
            self._vocab.extend(tokenizer.encode(" " + word))
        self._text: dict[int, str] = {}

    def plan(self, echo_ids: list[int], max_tokens: int, ignore_eos: bool, seed: int | None = None) -> Plan:
        max_tokens = max(1, max_tokens)
        if self.mode == "echo":
            ids = echo_ids[:max_tokens] or self._vocab[:1]
            return Plan(ids, "length" if len(echo_ids) > max_tokens else "stop")
        rng = self._rng if seed is None else random.Random(seed)
        if ignore_eos:
            n, reason = max_tokens, "length"
        else:
            natural = 1 + int(rng.expovariate(1.0 / MEAN_NATURAL_LENGTH))
            n, reason = (max_tokens, "length") if natural >= max_tokens else (natural, "stop")
        vocab = self._vocab
        return Plan(rng.choices(vocab, k=n), reason)

    def text(self, token_id: int) -> str:
        """The text of one output token (memoised: the same few hundred ids recur)."""
        t = self._text.get(token_id)
        if t is None:
            if len(self._text) > 100_000:  # echo mode sees arbitrary prompt ids
                self._text.clear()
            t = self._text[token_id] = self.tokenizer.decode([token_id])
        return t
