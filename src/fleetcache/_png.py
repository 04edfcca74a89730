"""A tiny raster canvas that writes PNG files with the standard library only (zlib + struct).

Enough for the demo's chart: filled rectangles, thick lines, and text in a built-in 5x7
bitmap font (upper-case letters, digits and a little punctuation; lower case is drawn as
upper case). It keeps ``fleetcache demo`` free of plotting dependencies.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

Color = tuple[int, int, int]

# Each glyph: 7 rows of 5 pixels, the most significant of 5 bits is the left column.
_FONT: dict[str, tuple[int, ...]] = {
    " ": (0, 0, 0, 0, 0, 0, 0),
    "0": (14, 17, 19, 21, 25, 17, 14),
    "1": (4, 12, 4, 4, 4, 4, 14),
    "2": (14, 17, 1, 2, 4, 8, 31),
    "3": (31, 2, 4, 2, 1, 17, 14),
    "4": (2, 6, 10, 18, 31, 2, 2),
    "5": (31, 16, 30, 1, 1, 17, 14),
    "6": (6, 8, 16, 30, 17, 17, 14),
    "7": (31, 1, 2, 4, 8, 8, 8),
    "8": (14, 17, 17, 14, 17, 17, 14),
    "9": (14, 17, 17, 15, 1, 2, 12),
    "A": (14, 17, 17, 31, 17, 17, 17),
    "B": (30, 17, 17, 30, 17, 17, 30),
    "C": (14, 17, 16, 16, 16, 17, 14),
    "D": (28, 18, 17, 17, 17, 18, 28),
    "E": (31, 16, 16, 30, 16, 16, 31),
    "F": (31, 16, 16, 30, 16, 16, 16),
    "G": (14, 17, 16, 23, 17, 17, 15),
    "H": (17, 17, 17, 31, 17, 17, 17),
    "I": (14, 4, 4, 4, 4, 4, 14),
    "J": (7, 2, 2, 2, 2, 18, 12),
    "K": (17, 18, 20, 24, 20, 18, 17),
    "L": (16, 16, 16, 16, 16, 16, 31),
    "M": (17, 27, 21, 21, 17, 17, 17),
    "N": (17, 17, 25, 21, 19, 17, 17),
    "O": (14, 17, 17, 17, 17, 17, 14),
    "P": (30, 17, 17, 30, 16, 16, 16),
    "Q": (14, 17, 17, 17, 21, 18, 13),
    "R": (30, 17, 17, 30, 20, 18, 17),
    "S": (15, 16, 16, 14, 1, 1, 30),
    "T": (31, 4, 4, 4, 4, 4, 4),
    "U": (17, 17, 17, 17, 17, 17, 14),
    "V": (17, 17, 17, 17, 17, 10, 4),
    "W": (17, 17, 17, 21, 21, 21, 10),
    "X": (17, 17, 10, 4, 10, 17, 17),
    "Y": (17, 17, 10, 4, 4, 4, 4),
    "Z": (31, 1, 2, 4, 8, 16, 31),
    "%": (24, 25, 2, 4, 8, 19, 3),
    ".": (0, 0, 0, 0, 0, 12, 12),
    ",": (0, 0, 0, 0, 12, 4, 8),
    ":": (0, 12, 12, 0, 12, 12, 0),
    ";": (0, 12, 12, 0, 12, 4, 8),
    "/": (1, 1, 2, 4, 8, 16, 16),
    "-": (0, 0, 0, 31, 0, 0, 0),
    "+": (0, 4, 4, 31, 4, 4, 0),
    "=": (0, 0, 31, 0, 31, 0, 0),
    "(": (2, 4, 8, 8, 8, 4, 2),
    ")": (8, 4, 2, 2, 2, 4, 8),
    "_": (0, 0, 0, 0, 0, 0, 31),
    "?": (14, 17, 1, 2, 4, 0, 4),
}


class Canvas:
    """An RGB image of ``width`` x ``height`` pixels, white to start with."""

    def __init__(self, width: int, height: int, background: Color = (255, 255, 255)) -> None:
        if width < 1 or height < 1:
            raise ValueError("width and height must be >= 1 pixel")
        self.width = width
        self.height = height
        self.px = bytearray(bytes(background) * (width * height))

    def set(self, x: int, y: int, c: Color) -> None:
        """Colour one pixel (silently ignores pixels outside the image)."""
        if 0 <= x < self.width and 0 <= y < self.height:
            i = (y * self.width + x) * 3
            self.px[i : i + 3] = bytes(c)

    def rect(self, x0: int, y0: int, x1: int, y1: int, c: Color) -> None:
        """Fill the rectangle with corners (x0, y0) and (x1, y1), both included."""
        xa, xb = sorted((max(0, x0), min(self.width - 1, x1)))
        ya, yb = sorted((max(0, y0), min(self.height - 1, y1)))
        row = bytes(c) * (xb - xa + 1)
        for y in range(ya, yb + 1):
            i = (y * self.width + xa) * 3
            self.px[i : i + len(row)] = row

    def line(self, x0: int, y0: int, x1: int, y1: int, c: Color, width: int = 1) -> None:
        """A straight line ``width`` pixels thick (Bresenham, square pen)."""
        dx, dy = abs(x1 - x0), -abs(y1 - y0)
        sx = 1 if x0 < x1 else -1
        sy = 1 if y0 < y1 else -1
        e = dx + dy
        lo = -(width // 2)
        hi = lo + width - 1
        for _ in range(dx - dy + 1):  # bounded: one step per pixel of the longer axis sum
            self.rect(x0 + lo, y0 + lo, x0 + hi, y0 + hi, c)
            if x0 == x1 and y0 == y1:
                break
            e2 = 2 * e
            if e2 >= dy:
                e += dy
                x0 += sx
            if e2 <= dx:
                e += dx
                y0 += sy

    def text(self, x: int, y: int, s: str, c: Color = (0, 0, 0), scale: int = 2) -> int:
        """Draw ``s`` with its top-left corner at (x, y); returns the x after the text."""
        for ch in s.upper():
            glyph = _FONT.get(ch, _FONT["?"])
            for row, bits in enumerate(glyph):
                for col in range(5):
                    if bits & (16 >> col):
                        self.rect(
                            x + col * scale,
                            y + row * scale,
                            x + col * scale + scale - 1,
                            y + row * scale + scale - 1,
                            c,
                        )
            x += 6 * scale
        return x

    @staticmethod
    def text_width(s: str, scale: int = 2) -> int:
        """Width in pixels ``text`` uses for ``s``."""
        return len(s) * 6 * scale

    def png(self) -> bytes:
        """The image as PNG bytes (8-bit RGB, no filtering, zlib level 9)."""
        stride = self.width * 3
        raw = b"".join(
            b"\x00" + bytes(self.px[y * stride : (y + 1) * stride]) for y in range(self.height)
        )

        def chunk(kind: bytes, data: bytes) -> bytes:
            body = kind + data
            return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b"")
        )

    def save(self, path: str | Path) -> Path:
        """Write the PNG file; returns its path."""
        p = Path(path)
        p.write_bytes(self.png())
        return p
