"""The shared tokenizer: reversible, prefix-stable at word boundaries, about four characters per token."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inferplane.errors import InferplaneError
from inferplane.tokenizer import HFTokenizer, SimpleTokenizer, Tokenizer, get_tokenizer

TOK = SimpleTokenizer()

WORDS = st.lists(st.sampled_from(["the", "Cache", "prefix", "KV", "42", "über", "日本", "routing", "x", "!?"]))


@given(st.text())
def test_decode_inverts_encode(text: str) -> None:
    ids = TOK.encode(text)
    assert TOK.decode(ids) == text
    assert all(0 <= i < 2**32 for i in ids)


@given(st.text(min_size=1).filter(lambda s: not s[-1].isspace()), st.text(), st.text())
def test_prefix_stable_at_word_boundary(prefix: str, tail_a: str, tail_b: str) -> None:
    a = prefix + " " + tail_a
    b = prefix + "\n" + tail_b
    head = TOK.encode(prefix)
    assert TOK.encode(a)[: len(head)] == head
    assert TOK.encode(b)[: len(head)] == head


@given(WORDS, WORDS)
def test_shared_word_prefix_shares_tokens(common: list[str], rest: list[str]) -> None:
    base = " ".join(["start", *common])
    assert TOK.encode(base + " " + " ".join(rest))[: len(TOK.encode(base))] == TOK.encode(base)


def test_about_four_characters_per_token_on_english() -> None:
    text = (
        "Routing quality is only as believable as the simulator: a prefix cache hit must save prefill time "
        "the way it does on a real accelerator, a full batch must queue, and a full cache must evict blocks."
    )
    ratio = len(text) / len(TOK.encode(text))
    assert 3.5 <= ratio <= 5.0, ratio


def test_deterministic_across_instances() -> None:
    assert SimpleTokenizer().encode("Hello, world 123") == SimpleTokenizer().encode("Hello, world 123")


def test_rejects_foreign_ids() -> None:
    with pytest.raises(ValueError, match="not a SimpleTokenizer id"):
        TOK.decode([2**32 + 5])


def test_get_tokenizer_specs(tmp_path) -> None:
    assert isinstance(get_tokenizer(None), Tokenizer)
    assert get_tokenizer("simple").name == "simple"
    with pytest.raises(InferplaneError, match="unknown tokenizer"):
        get_tokenizer("no-such-tokenizer")
    with pytest.raises(InferplaneError, match="does not exist"):
        HFTokenizer(tmp_path / "missing.json")
    (tmp_path / "tokenizer.json").write_text("{}")
    with pytest.raises(InferplaneError, match=r"tokenizers|cannot load"):
        get_tokenizer(str(tmp_path))
