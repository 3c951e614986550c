"""A large delivery's ``webhook_deliveries`` row as a one-row Parquet file, its payload copied from
the spool file in pieces, for DuckLake to take as a data file (``ducklake_add_data_files``).

Why: DuckDB's Parquet writer holds a 24 MB payload value about three times while it buffers the
row group and encodes its page (measured in isolation: +146 MiB for the 23.8 MiB push, whatever
the compression), which made the payload's INSERT the receiver's peak for a large delivery. The
file is simple enough to write without holding the value: one row group, one uncompressed PLAIN
data page per column, the page's size known from the spool file's size, so its header is written
first and the payload is copied after it (``os.sendfile``, file to file, through the page cache,
never in the receiver's memory). The footer is a few hundred bytes of Thrift (compact protocol).

The file has the shape DuckDB itself would write for these columns (optional columns, UTF-8
strings, the payload with Parquet's JSON logical type, which DuckLake requires for a JSON column,
a UTC timestamp in microseconds, a 32-bit integer), no dictionary, and the column statistics
DuckDB writes (DuckLake copies them into its catalog and skips the file by them), a long text's
(the payload's, read from the start of its file) cut to 256 bytes as DuckDB cuts them.
Readers get the same row: tests/test_receiver_payload_file.py holds a store written this way to
one written by INSERT.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

# Parquet's Thrift enums (parquet.thrift)
_INT32, _INT64, _BYTE_ARRAY = 1, 2, 6  # Type
_OPTIONAL = 1  # FieldRepetitionType
_PLAIN, _RLE = 0, 3  # Encoding
_UTF8, _TIMESTAMP_MICROS, _JSON = 0, 10, 19  # ConvertedType
_DATA_PAGE = 0  # PageType
# Thrift compact protocol field types
_T_TRUE, _T_I32, _T_I64, _T_BINARY, _T_LIST, _T_STRUCT = 1, 5, 6, 8, 9, 12
_MAGIC = b"PAR1"
_COPY_PIECE = 1 << 20
# A text's min/max are kept to this many bytes, as DuckDB keeps them in its own files (``_bounds``):
# DuckLake copies them into its catalog and reads them to plan each query of the table, and a
# GitLab event name is the sender's to make as long as the body. They cannot be left out: DuckLake
# then keeps the table's min/max from the other files alone, and a filter skips rows (measured on
# DuckDB 1.5.5: ``WHERE payload = ?`` found neither this file's row nor an earlier INSERT's).
_MAX_STAT = 256

# The column types this writer knows: information_schema's data_type -> Parquet physical type,
# converted type, logical type (LogicalType union field: 1 STRING, 8 TIMESTAMP, 12 JSON).
KNOWN_TYPES = {"VARCHAR": (_BYTE_ARRAY, _UTF8, 1), "JSON": (_BYTE_ARRAY, _JSON, 12),
               "TIMESTAMP WITH TIME ZONE": (_INT64, _TIMESTAMP_MICROS, 8), "INTEGER": (_INT32, None, None)}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _Thrift:
    """Just enough of Thrift's compact protocol for a Parquet page header and footer."""

    def __init__(self) -> None:
        self.out = bytearray()
        self._last = [0]

    def _varint(self, n: int) -> None:
        while n > 0x7F:
            self.out.append((n & 0x7F) | 0x80)
            n >>= 7
        self.out.append(n)

    def _zigzag(self, n: int) -> None:
        self._varint((n << 1) ^ (n >> 63))

    def field(self, fid: int, ftype: int) -> None:
        delta = fid - self._last[-1]
        if 0 < delta <= 15:
            self.out.append((delta << 4) | ftype)
        else:
            self.out.append(ftype)
            self._zigzag(fid)
        self._last[-1] = fid

    def i32(self, fid: int, n: int) -> None:
        self.field(fid, _T_I32)
        self._zigzag(n)

    def i64(self, fid: int, n: int) -> None:
        self.field(fid, _T_I64)
        self._zigzag(n)

    def true(self, fid: int) -> None:
        self.field(fid, _T_TRUE)

    def binary(self, fid: int, data: bytes) -> None:
        self.field(fid, _T_BINARY)
        self._varint(len(data))
        self.out += data

    def begin(self, fid: int | None = None) -> None:
        """A struct: as field ``fid`` of the current one, or as an element of a list (None)."""
        if fid is not None:
            self.field(fid, _T_STRUCT)
        self._last.append(0)

    def end(self) -> None:
        self.out.append(0)
        self._last.pop()

    def list_of(self, fid: int, elem: int, size: int) -> None:
        self.field(fid, _T_LIST)
        if size < 15:
            self.out.append((size << 4) | elem)
        else:
            self.out.append(0xF0 | elem)
            self._varint(size)

    def i32_list(self, fid: int, values: Sequence[int]) -> None:
        self.list_of(fid, _T_I32, len(values))
        for n in values:
            self._zigzag(n)

    def binary_list(self, fid: int, values: Sequence[bytes]) -> None:
        self.list_of(fid, _T_BINARY, len(values))
        for data in values:
            self._varint(len(data))
            self.out += data


def _page_header(values_size: int) -> bytes:
    t = _Thrift()
    t.i32(1, _DATA_PAGE)
    t.i32(2, values_size)
    t.i32(3, values_size)
    t.begin(5)  # DataPageHeader
    t.i32(1, 1)  # num_values
    t.i32(2, _PLAIN)
    t.i32(3, _RLE)  # definition levels
    t.i32(4, _RLE)  # repetition levels (none: not repeated)
    t.end()
    t.end()
    return bytes(t.out)


def _levels(present: bool) -> bytes:
    """The definition levels of one value, RLE/bit-packed hybrid with its 4-byte length: one run."""
    return struct.pack("<I", 2) + bytes((2, 1 if present else 0))


def _plain(kind: int, value: Any) -> bytes:
    """A value in Parquet's PLAIN encoding (a string with its 4-byte length, as in a page)."""
    if value is None:
        return b""
    if kind == _INT32:
        return struct.pack("<i", int(value))
    if kind == _INT64:  # a timestamp: microseconds since the epoch, UTC
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        delta = moment - _EPOCH
        return struct.pack("<q", (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds)
    data = str(value).encode("utf-8")
    return struct.pack("<I", len(data)) + data


def write_row_file(target: str, columns: Sequence[tuple[str, str]], row: Sequence[Any],
                   from_file: int, source: str) -> int:
    """Write ``row`` (values in the order of ``columns``: name and information_schema type, each
    in KNOWN_TYPES) to a new Parquet file at ``target``; the value of column ``from_file`` is the
    content of the file ``source`` (its bytes as they are: UTF-8 text). Returns the file's size.
    Raises OSError (the target is removed), and ValueError for a payload past one page's 2 GiB."""
    chunks: list[_Chunk] = []
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        offset = os.write(fd, _MAGIC)
        for index, ((_, type_name), value) in enumerate(zip(columns, row, strict=True)):
            kind = KNOWN_TYPES[type_name][0]
            if index == from_file:
                size = os.stat(source).st_size
                if size > 0x7FFF_FFFF - 16:
                    raise ValueError("payload too large for one Parquet page")
                head = _levels(True) + struct.pack("<I", size)
                header = _page_header(len(head) + size)
                _write_all(fd, header + head)
                _copy(source, fd, size)
                with open(source, "rb") as src:  # the statistics: the payload's first bytes
                    low, high = _bounds(src.read(_MAX_STAT + 1), size)
                chunks.append(_Chunk(offset, len(header) + len(head) + size, False, low, high))
            else:
                values = _levels(value is not None) + _plain(kind, value)
                page = _page_header(len(values)) + values
                _write_all(fd, page)
                # statistics hold a string's bytes without their length
                if value is None:
                    chunks.append(_Chunk(offset, len(page), True, None, None))
                elif kind == _BYTE_ARRAY:
                    stat = _plain(kind, value)[4:]
                    chunks.append(_Chunk(offset, len(page), False, *_bounds(stat, len(stat))))
                else:
                    stat = _plain(kind, value)
                    chunks.append(_Chunk(offset, len(page), False, stat, stat))
            offset += chunks[-1].size
        footer = _footer(columns, chunks)
        _write_all(fd, footer + struct.pack("<I", len(footer)) + _MAGIC)
        os.fsync(fd)
        return offset + len(footer) + 8
    except BaseException:
        os.close(fd)
        fd = -1
        with contextlib.suppress(OSError):
            os.unlink(target)
        raise
    finally:
        if fd >= 0:
            os.close(fd)


class _Chunk(NamedTuple):
    """A column chunk as the footer describes it: where its page is, its size with the header, and
    its statistics: whether the value is null, and its min and max (None: a null)."""

    offset: int
    size: int
    null: bool
    low: bytes | None
    high: bytes | None


def _bounds(text: bytes, size: int) -> tuple[bytes, bytes]:
    """The min and max statistics of a text of ``size`` bytes that begins with ``text`` (at least
    its first _MAX_STAT + 1 bytes): the text itself when it is that short; else, as DuckDB writes
    them, its first _MAX_STAT bytes or fewer (whole characters) as the min, and that prefix with
    its last character one higher as the max: every text that begins with the prefix lies between
    (UTF-8 orders as code points do). Raises UnicodeDecodeError for bytes that are not UTF-8."""
    if size <= _MAX_STAT:
        return text[:size], text[:size]
    cut = _MAX_STAT
    while cut > 0 and text[cut] & 0xC0 == 0x80:  # a character's continuation byte: cut before it
        cut -= 1
    prefix = text[:cut].decode("utf-8")
    chars = list(prefix)
    while chars:
        code = ord(chars[-1]) + 1
        code = 0xE000 if code == 0xD800 else code  # past the surrogates, which UTF-8 cannot hold
        if code <= 0x10FFFF:
            chars[-1] = chr(code)
            return prefix.encode("utf-8"), "".join(chars).encode("utf-8")
        chars.pop()
    if len(text) == size:  # a prefix of U+10FFFF only (no higher character): the whole text
        return text, text
    raise ValueError("no upper bound for a text of U+10FFFF characters")  # not JSON: never a payload


def _footer(columns: Sequence[tuple[str, str]], chunks: Sequence[_Chunk]) -> bytes:
    t = _Thrift()
    t.i32(1, 1)  # version
    t.list_of(2, _T_STRUCT, len(columns) + 1)  # schema: the root, then each column
    t.begin()
    t.binary(4, b"duckdb_schema")
    t.i32(5, len(columns))
    t.end()
    for name, type_name in columns:
        kind, converted, logical = KNOWN_TYPES[type_name]
        t.begin()
        t.i32(1, kind)
        t.i32(3, _OPTIONAL)
        t.binary(4, name.encode("utf-8"))
        if converted is not None:
            t.i32(6, converted)
        if logical is not None:
            t.begin(10)  # LogicalType, a union: one member
            t.begin(logical)
            if logical == 8:  # TimestampType: adjusted to UTC, microseconds
                t.true(1)
                t.begin(2)
                t.begin(2)  # TimeUnit.MICROS
                t.end()
                t.end()
            t.end()
            t.end()
        t.end()
    t.i64(3, 1)  # num_rows
    t.list_of(4, _T_STRUCT, 1)  # row_groups
    t.begin()
    t.list_of(1, _T_STRUCT, len(columns))
    for (name, type_name), (offset, size, null, low, high) in zip(columns, chunks, strict=True):
        kind = KNOWN_TYPES[type_name][0]
        t.begin()  # ColumnChunk
        t.i64(2, offset)
        t.begin(3)  # ColumnMetaData
        t.i32(1, kind)
        t.i32_list(2, [_PLAIN, _RLE])
        t.binary_list(3, [name.encode("utf-8")])
        t.i32(4, 0)  # UNCOMPRESSED
        t.i64(5, 1)
        t.i64(6, size)
        t.i64(7, size)
        t.i64(9, offset)
        # Statistics: the one value is the min and the max, a long text's cut (``_bounds``), so
        # DuckLake can skip the file for a delivery id, as it does DuckDB's own files.
        t.begin(12)
        t.i64(3, int(null))
        if low is not None and high is not None:
            t.binary(5, high)  # max_value
            t.binary(6, low)  # min_value
        t.end()
        t.end()
        t.end()
    t.i64(2, sum(chunk.size for chunk in chunks))  # total_byte_size
    t.i64(3, 1)
    t.end()
    t.binary(6, b"gitops-dora webhook receiver")
    t.list_of(7, _T_STRUCT, len(columns))  # column_orders: min/max by each type's order
    for _ in columns:
        t.begin()
        t.begin(1)  # TypeDefinedOrder
        t.end()
        t.end()
    t.end()
    return bytes(t.out)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _copy(source: str, fd: int, size: int) -> None:
    """The source file's bytes appended to ``fd``, kernel to kernel where it can (``sendfile``)."""
    with open(source, "rb") as src:
        done = 0
        try:
            while done < size:
                sent = os.sendfile(fd, src.fileno(), done, min(size - done, 1 << 30))
                if sent == 0:
                    break
                done += sent
        except OSError as exc:
            if done or exc.errno not in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: no sendfile here
                raise
            while done < size:
                piece = src.read(_COPY_PIECE)
                if not piece:
                    break
                _write_all(fd, piece)
                done += len(piece)
        if done != size:
            raise OSError(f"{source}: changed while it was copied")

