"""HPACK decoding (RFC 7541) of the header blocks a gRPC client sends.

Why not `hpack.Decoder` itself: it costs ~32 µs per Envoy ext_proc header block, most of it Huffman-decoding the
same `:path` on every stream (Envoy sends `:path` as a literal "without indexing", so it is never in the dynamic
table) and building a HeaderTuple per field. This decoder keeps the same dynamic table but remembers each Huffman
string it decoded (a pure function of its bytes), which makes a repeated block a few table lookups. The Huffman code
and the static table are the `hpack` library's; a hypothesis test checks this decoder against `hpack.Encoder`.
"""

from __future__ import annotations

from collections import deque

from hpack.exceptions import HPACKDecodingError
from hpack.huffman_table import decode_huffman
from hpack.table import HeaderTable

STATIC_TABLE: tuple[tuple[bytes, bytes], ...] = HeaderTable.STATIC_TABLE
STATIC_LEN = len(STATIC_TABLE)
ENTRY_OVERHEAD = 32  # RFC 7541 §4.1
DEFAULT_TABLE_SIZE = 4096
HUFFMAN_CACHE = 1024  # distinct strings remembered; the cache is dropped whole when full


class HpackError(Exception):
    """A header block that cannot be decoded: a connection error (COMPRESSION_ERROR) for HTTP/2."""


def _integer(data: bytes, pos: int, prefix_bits: int) -> tuple[int, int]:
    """An HPACK integer (RFC 7541 §5.1) at `pos`; returns it and the position after it."""
    mask = (1 << prefix_bits) - 1
    value = data[pos] & mask
    pos += 1
    if value < mask:
        return value, pos
    shift = 0
    while True:
        if pos >= len(data):
            raise HpackError("integer runs past the end of the block")
        byte = data[pos]
        pos += 1
        value += (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos
        if shift > 28:
            raise HpackError("integer too large")


class HpackDecoder:
    """One connection's decoder: the dynamic table lives as long as the connection."""

    def __init__(self, max_table_size: int = DEFAULT_TABLE_SIZE, max_header_list_size: int = 65_536) -> None:
        self.max_allowed = max_table_size  # what we advertised in SETTINGS_HEADER_TABLE_SIZE
        self.max_size = max_table_size  # the encoder's current choice (≤ max_allowed)
        self.max_header_list_size = max_header_list_size
        self.size = 0
        self.table: deque[tuple[bytes, bytes]] = deque()  # newest first: index 62 is table[0]
        self._huffman: dict[bytes, bytes] = {}

    def decode(self, data: bytes) -> list[tuple[bytes, bytes]]:
        out: list[tuple[bytes, bytes]] = []
        pos = 0
        n = len(data)
        listed = 0
        try:
            while pos < n:
                byte = data[pos]
                if byte & 0x80:  # indexed field
                    index, pos = _integer(data, pos, 7)
                    field = self._entry(index)
                elif byte & 0x40:  # literal with incremental indexing
                    index, pos = _integer(data, pos, 6)
                    field, pos = self._literal(data, pos, index)
                    self._add(field)
                elif byte & 0x20:  # dynamic table size update
                    if out:
                        raise HpackError("table size update after a header field")
                    size, pos = _integer(data, pos, 5)
                    if size > self.max_allowed:
                        raise HpackError(f"table size {size} above the advertised {self.max_allowed}")
                    self.max_size = size
                    self._evict()
                    continue
                else:  # literal without indexing (0000) or never indexed (0001)
                    index, pos = _integer(data, pos, 4)
                    field, pos = self._literal(data, pos, index)
                listed += len(field[0]) + len(field[1]) + ENTRY_OVERHEAD
                if listed > self.max_header_list_size:
                    raise HpackError("header list too large")
                out.append(field)
        except IndexError:
            raise HpackError("header block ends inside a field") from None
        return out

    def _entry(self, index: int) -> tuple[bytes, bytes]:
        if index == 0:
            raise HpackError("index 0")
        if index <= STATIC_LEN:
            return STATIC_TABLE[index - 1]
        try:
            return self.table[index - STATIC_LEN - 1]
        except IndexError:
            raise HpackError(f"index {index} beyond the dynamic table") from None

    def _literal(self, data: bytes, pos: int, name_index: int) -> tuple[tuple[bytes, bytes], int]:
        if name_index:
            name = self._entry(name_index)[0]
        else:
            name, pos = self._string(data, pos)
        value, pos = self._string(data, pos)
        return (name, value), pos

    def _string(self, data: bytes, pos: int) -> tuple[bytes, int]:
        huffman = data[pos] & 0x80
        length, pos = _integer(data, pos, 7)
        end = pos + length
        if end > len(data):
            raise HpackError("string runs past the end of the block")
        raw = data[pos:end]
        if not huffman:
            return raw, end
        text = self._huffman.get(raw)
        if text is None:
            try:
                text = decode_huffman(raw)
            except HPACKDecodingError as exc:
                raise HpackError(f"invalid Huffman string: {exc}") from None
            if len(self._huffman) >= HUFFMAN_CACHE:
                self._huffman.clear()
            self._huffman[raw] = text
        return text, end

    def _add(self, field: tuple[bytes, bytes]) -> None:
        size = len(field[0]) + len(field[1]) + ENTRY_OVERHEAD
        if size > self.max_size:  # RFC 7541 §4.4: an entry larger than the table empties it
            self.table.clear()
            self.size = 0
            return
        self.table.appendleft(field)
        self.size += size
        self._evict()

    def _evict(self) -> None:
        while self.size > self.max_size:
            name, value = self.table.pop()
            self.size -= len(name) + len(value) + ENTRY_OVERHEAD
