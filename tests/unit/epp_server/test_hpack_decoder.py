"""The h2grpc HPACK decoder against the `hpack` library's encoder: same header lists back, block after block, with
the dynamic table, Huffman, never-indexed fields and table size changes in play."""

from __future__ import annotations

import hpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inferplane.epp.h2grpc.hpack_decoder import HpackDecoder, HpackError

NAMES = st.sampled_from(
    [b":method", b":path", b":authority", b"content-type", b"te", b"x-request-id", b"grpc-timeout", b"x-custom"]
) | st.binary(min_size=1, max_size=20).map(lambda b: b.lower())
VALUES = st.sampled_from([b"POST", b"/svc/Method", b"trailers", b"application/grpc", b""]) | st.binary(max_size=300)
FIELD = st.tuples(NAMES, VALUES, st.booleans())  # (name, value, never indexed)
BLOCK = st.tuples(
    st.lists(FIELD, max_size=12),
    st.booleans(),  # Huffman
    st.none() | st.integers(min_value=0, max_value=4096),  # a table size change before this block
)


@settings(max_examples=150, deadline=None)
@given(st.lists(BLOCK, min_size=1, max_size=8))
def test_decodes_what_hpack_encodes(blocks: list[tuple[list[tuple[bytes, bytes, bool]], bool, int | None]]) -> None:
    encoder = hpack.Encoder()
    ours = HpackDecoder()
    for fields, huffman, table_size in blocks:
        if table_size is not None:
            encoder.header_table_size = table_size
        headers = [hpack.NeverIndexedHeaderTuple(n, v) if never else hpack.HeaderTuple(n, v) for n, v, never in fields]
        block = encoder.encode(headers, huffman=huffman)
        assert ours.decode(block) == [(n, v) for n, v, _ in fields]
        assert ours.size <= ours.max_size


def test_repeated_block_reuses_the_table_and_the_huffman_cache() -> None:
    encoder = hpack.Encoder()
    ours = HpackDecoder()
    headers = [(b":method", b"POST"), (b"x-request-id", b"abc"), (b":path", b"/a/very/long/path/name")]
    first = encoder.encode(headers)
    second = encoder.encode(headers)
    assert len(second) < len(first)  # indexed the second time
    assert ours.decode(first) == headers
    assert ours.decode(second) == headers
    assert ours.table[0] == (b":path", b"/a/very/long/path/name")


@pytest.mark.parametrize(
    ("block", "needle"),
    [
        (b"\x80", "index 0"),
        (b"\xff\x00", "beyond the dynamic table"),  # index 127, the table is empty
        (b"\x3f\xe2\x1f", "above the advertised"),  # a size update to 4097 = 31 + 98 + (31 << 7)
        (b"\x82\x20", "after a header field"),
        (b"\x40\x05ab", "past the end"),
        (b"\x00\x81\xff", "Huffman"),  # one byte of Huffman that is all padding bits but too long an EOS prefix
        (b"\xff\xff\xff\xff\xff\xff\x01", "too large"),
    ],
)
def test_bad_blocks_are_errors(block: bytes, needle: str) -> None:
    with pytest.raises(HpackError, match=needle):
        HpackDecoder().decode(block)


def test_header_list_size_is_bounded() -> None:
    encoder = hpack.Encoder()
    block = encoder.encode([(b"x-big", b"v" * 2000)] * 4)
    with pytest.raises(HpackError, match="too large"):
        HpackDecoder(max_header_list_size=4096).decode(block)
