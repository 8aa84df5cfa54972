"""Tokenizers shared by the simulator and the endpoint picker, so both count and hash the same tokens.

`SimpleTokenizer` is the built-in one: deterministic, dependency-free, reversible, about four characters per token
on English text, and prefix-stable at word boundaries (a text that ends in a non-space character and continues with
whitespace tokenizes to a prefix of the continued text's tokens), which is what prefix-cache routing needs.

Id scheme (every id fits in an unsigned 32-bit integer, as vLLM's KV events carry token ids as u32):

* ``[0, 2**30)``        a run of up to 6 symbols from A32 = ``" abcdefghijklmnopqrstuvwxyz"`` (an optional leading
                        space then lowercase letters), 5 bits per symbol, symbol 0 = padding, first symbol lowest.
* ``[2**30, 2**31)``    a run of up to 5 symbols from A64 = A32 + ``A-Z`` + ``0-9``, 6 bits per symbol.
* ``[2**31, 2**31 + 0x110000)``  any other single character, by code point.

Chunks come from one regular expression (optional leading space + a letter/digit run, cut to the packing widths,
else one character) and each distinct chunk's id is memoised, so encoding is a `re.findall` plus dict look-ups:
hand-written rather than a BPE library because it must run per request in the endpoint picker (an 8,000-character
prompt encodes in a few hundred microseconds; see benchmarks/sim_tokenizer.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from inferplane.errors import InferplaneError

_A32 = " abcdefghijklmnopqrstuvwxyz"
_A64 = _A32 + "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_SYM32 = {c: i + 1 for i, c in enumerate(_A32)}
_SYM64 = {c: i + 1 for i, c in enumerate(_A64)}
_BASE64 = 1 << 30
_BASE_CP = 1 << 31
_MAX_ID = _BASE_CP + 0x110000

# Order matters: lowercase runs first (6 per id), then mixed-case/digit runs (5 per id), then one character.
_CHUNK_RE = re.compile(r" [a-z]{1,5}|[a-z]{1,6}| [A-Za-z0-9]{1,4}|[A-Za-z0-9]{1,5}|[\s\S]")
_MEMO_LIMIT = 1 << 20


@runtime_checkable
class Tokenizer(Protocol):
    name: str

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...


def _chunk_id(chunk: str) -> int:
    if len(chunk) <= 6 and all(c in _SYM32 for c in chunk) and (chunk[0] == " " or " " not in chunk):
        value = 0
        for i, c in enumerate(chunk):
            value |= _SYM32[c] << (5 * i)
        return value
    if len(chunk) <= 5 and all(c in _SYM64 for c in chunk):
        value = 0
        for i, c in enumerate(chunk):
            value |= _SYM64[c] << (6 * i)
        return _BASE64 | value
    if len(chunk) != 1:  # pragma: no cover - the chunk regex never yields this
        raise ValueError(f"chunk {chunk!r} has no id")
    return _BASE_CP + ord(chunk)


def _id_chunk(token_id: int) -> str:
    if token_id < 0 or token_id >= _MAX_ID:
        raise ValueError(f"token id {token_id} is not a SimpleTokenizer id")
    if token_id >= _BASE_CP:
        return chr(token_id - _BASE_CP)
    bits, mask, alphabet, value = (6, 63, _A64, token_id - _BASE64) if token_id >= _BASE64 else (5, 31, _A32, token_id)
    out = []
    while value:
        sym = value & mask
        if sym == 0:
            raise ValueError(f"token id {token_id} is not a SimpleTokenizer id")
        out.append(alphabet[sym - 1])
        value >>= bits
    if not out:
        raise ValueError(f"token id {token_id} is not a SimpleTokenizer id")
    return "".join(out)


class SimpleTokenizer:
    """The built-in deterministic tokenizer (see the module docstring for the id scheme)."""

    name = "simple"

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._chunks: dict[int, str] = {}

    def encode(self, text: str) -> list[int]:
        memo = self._ids
        chunks = _CHUNK_RE.findall(text)
        try:
            return list(map(memo.__getitem__, chunks))
        except KeyError:
            pass
        if len(memo) > _MEMO_LIMIT:
            memo.clear()
        out = []
        for c in chunks:
            i = memo.get(c)
            if i is None:
                i = memo[c] = _chunk_id(c)
            out.append(i)
        return out

    def decode(self, ids: Sequence[int]) -> str:
        memo = self._chunks
        if len(memo) > _MEMO_LIMIT:
            memo.clear()
        parts = []
        for i in ids:
            c = memo.get(i)
            if c is None:
                c = memo[i] = _id_chunk(int(i))
            parts.append(c)
        return "".join(parts)

    def count(self, text: str) -> int:
        return len(_CHUNK_RE.findall(text))


class HFTokenizer:
    """A Hugging Face `tokenizer.json` (file or directory holding one), loaded with the `tokenizers` package."""

    def __init__(self, path: str | Path) -> None:
        p = Path(path)
        if p.is_dir():
            p = p / "tokenizer.json"
        if not p.is_file():
            raise InferplaneError(
                f"tokenizer file {p} does not exist",
                hint="pass a path to a Hugging Face tokenizer.json (or its directory), or 'simple'",
            )
        try:
            from tokenizers import Tokenizer as _HF  # type: ignore[import-not-found, unused-ignore]
        except ImportError:
            raise InferplaneError(
                f"loading {p} needs the 'tokenizers' package, which is not installed",
                hint="pip install tokenizers, or use the built-in tokenizer ('simple')",
            ) from None
        try:
            self._tok: Any = _HF.from_file(str(p))
        except Exception as exc:  # the library raises a bare Exception on malformed files
            raise InferplaneError(f"cannot load tokenizer {p}: {exc}") from None
        self.name = str(p)

    def encode(self, text: str) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=False).ids)

    def decode(self, ids: Sequence[int]) -> str:
        return str(self._tok.decode(list(ids), skip_special_tokens=False))


_SHARED_SIMPLE = SimpleTokenizer()


def get_tokenizer(spec: str | None = None) -> Tokenizer:
    """None or "simple" → the shared SimpleTokenizer; "hf:PATH" or an existing PATH → HFTokenizer."""
    if spec is None or spec in ("", "simple"):
        return _SHARED_SIMPLE
    path = spec.removeprefix("hf:")
    if spec.startswith("hf:") or Path(path).exists() or path.endswith(".json"):
        return HFTokenizer(path)
    raise InferplaneError(
        f"unknown tokenizer {spec!r}",
        hint="use 'simple' (built in) or a path to a Hugging Face tokenizer.json ('hf:PATH' also works)",
    )
