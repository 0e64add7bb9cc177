"""compact_png undoes every PNG filter type exactly (vl-convert writes Sub rows; the others must work too)."""

import random
import struct
import zlib

from flows import charts


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _filtered(kind: int, line: bytearray, previous: bytearray) -> bytearray:
    out = bytearray(len(line))
    for x in range(len(line)):
        left, up = (line[x - 4] if x >= 4 else 0), previous[x]
        corner = previous[x - 4] if x >= 4 else 0
        estimate = left + up - corner
        pa, pb, pc = abs(estimate - left), abs(estimate - up), abs(estimate - corner)
        paeth = left if pa <= pb and pa <= pc else up if pb <= pc else corner
        out[x] = (line[x] - (0, left, up, (left + up) // 2, paeth)[kind]) & 0xFF
    return out


def test_every_filter_type_comes_back_as_the_same_rgb_pixels():
    width, height = 37, 25
    generator = random.Random(7)
    image = [bytearray(value for _ in range(width) for value in (*generator.randbytes(3), 255)) for _ in range(height)]
    raw, previous = bytearray(), bytearray(width * 4)
    for y, line in enumerate(image):
        raw.append(y % 5)
        raw += _filtered(y % 5, line, previous)
        previous = line
    png = (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
        + _chunk(b"IDAT", zlib.compress(bytes(raw)))
        + _chunk(b"IEND", b"")
    )
    compact = charts.compact_png(png)
    assert compact[12:16] == b"IHDR" and compact[16 + 9] == 2  # RGB now
    idat_length = struct.unpack(">I", compact[33:37])[0]
    pixels = zlib.decompress(compact[41 : 41 + idat_length])
    expected = b"".join(b"\x00" + bytes(b for i, b in enumerate(line) if i % 4 != 3) for line in image)
    assert pixels == expected
