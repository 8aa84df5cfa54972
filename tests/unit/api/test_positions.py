from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from inferplane.api.positions import parse_yaml


def test_positions_of_values_and_keys() -> None:
    [doc], problems = parse_yaml("a:\n  b: [1, 2]\n  c: x\n", "f.yaml")
    assert problems == []
    assert doc.data == {"a": {"b": [1, 2], "c": "x"}}
    assert doc.pos(("a", "b", 1)) == (2, 10)
    assert doc.pos(("a", "c")) == (3, 6)
    assert doc.pos(("a", "c"), key=True) == (3, 3)
    assert doc.pos(("a", "missing", 3)) == (2, 3)  # nearest ancestor


def test_multi_document_and_yaml11_scalars_and_keys_as_written() -> None:
    docs, problems = parse_yaml("---\non: yes\n1: 2020-01-01\n---\n---\nx: ~\n", "f.yaml")
    assert problems == []
    assert [d.data for d in docs] == [{"on": True, "1": "2020-01-01"}, None, {"x": None}]
    assert docs[2].start == (6, 1)


def test_merge_keys_and_anchors() -> None:
    [doc], _ = parse_yaml("base: &b {x: 1, y: 2}\nderived:\n  <<: *b\n  y: 3\n", "f.yaml")
    assert doc.data["derived"] == {"x": 1, "y": 3}


def test_alias_bomb_is_stopped() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    _docs, problems = parse_yaml("\n".join(lines) + "\n", "bomb.yaml")
    assert [p.message for p in problems] == ["document too large: more than 200000 values (alias expansion?)"]


def test_embedded_block_scalar_offsets() -> None:
    text = "outer:\n  cfg: |\n    kind: X\n    bad: [\n"
    [doc], _ = parse_yaml(text, "f.yaml")
    offset = doc.blocks[("outer", "cfg")]
    _, problems = parse_yaml(doc.data["outer"]["cfg"], "f.yaml", offset=offset)
    [p] = problems
    assert (p.file, p.line) == ("f.yaml", 5)


@given(st.text(max_size=300))
def test_parse_never_raises(text: str) -> None:
    docs, problems = parse_yaml(text, "fuzz.yaml")
    assert all(p.line >= 1 and p.column >= 1 for p in problems)
    assert all(isinstance(d.data, dict | list | str | int | float | bool | type(None)) for d in docs)
