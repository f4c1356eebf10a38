"""Image files without Pillow: read JPEG/PNG headers (size, truncation, EXIF orientation) and
write tiny solid-colour JPEGs for synthetic datasets."""

import os
import struct
import zlib
from functools import lru_cache
from typing import NamedTuple

HEAD_BYTES = 4096  # enough for the SOF of a Roboflow export; EXIF-heavy files read on
TAIL_BYTES = 32  # a JPEG may carry a little padding after its FFD9 end marker
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"
# Start-of-frame markers carry the size; C4 (DHT), C8 (JPG) and CC (DAC) are not frames.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE = frozenset(range(0xD0, 0xD8)) | {0x01}  # RSTn and TEM carry no length
# Formats Pillow opens that we do not parse: GIF, BMP, WebP, TIFF (either byte order).
_OTHER_SIGNATURES = (b"GIF87a", b"GIF89a", b"BM", b"RIFF", b"II*\x00", b"MM\x00*")


class Header(NamedTuple):
    """What the first and last bytes of an image file say."""

    format: str  # "jpeg", "png", "other" (a format we do not parse) or "" (not an image)
    width: int
    height: int
    problem: str  # "" when sound, else one of: empty, not_an_image, truncated, corrupt
    orientation: int  # EXIF orientation, 1 (or 0: no tag) means upright


def read_header(path: str, deep: bool = False) -> Header:
    """The format, size and soundness of one image file; deep also walks every byte of its structure."""
    fd = os.open(path, os.O_RDONLY)
    try:
        head = os.read(fd, HEAD_BYTES)
        size = len(head) if len(head) < HEAD_BYTES else os.lseek(fd, 0, os.SEEK_END)  # short read: all of it
        if size == 0:
            return Header("", 0, 0, "empty", 0)
        if head[:2] == b"\xff\xd8":
            if deep:
                return _jpeg_deep(head if len(head) == size else os.pread(fd, size, 0))
            return _jpeg(fd, head, size)
        if head[:8] == PNG_SIGNATURE:
            return _png_deep(head if len(head) == size else os.pread(fd, size, 0)) if deep else _png(fd, head, size)
        if head.startswith(_OTHER_SIGNATURES):
            return Header("other", 0, 0, "", 0)
        return Header("", 0, 0, "not_an_image", 0)
    finally:
        os.close(fd)


def _jpeg(fd: int, data: bytes, size: int) -> Header:
    width = height = orientation = 0
    pos = 2
    while True:
        if pos + 4 > len(data) and len(data) < size:
            data += os.pread(fd, max(HEAD_BYTES, pos + 4 - len(data)), len(data))
        if pos + 4 > len(data) or data[pos] != 0xFF:
            return Header("jpeg", width, height, "truncated" if pos + 4 > size else "corrupt", orientation)
        marker = data[pos + 1]
        if marker == 0xFF or marker in _STANDALONE:  # a fill byte, or a marker without a length
            pos += 1 if marker == 0xFF else 2
            continue
        length = (data[pos + 2] << 8) | data[pos + 3]
        end = pos + 2 + length
        if marker in _SOF or marker == 0xE1:
            data = _read_to(fd, data, end, size)
            if end > len(data):
                return Header("jpeg", width, height, "truncated", orientation)
            if marker == 0xE1:
                orientation = orientation or _exif_orientation(data[pos + 4 : end])
            else:
                height, width = struct.unpack_from(">HH", data, pos + 5)
                break
        elif marker == 0xDA or marker == 0xD9:  # scan or end before any frame header
            return Header("jpeg", 0, 0, "corrupt", orientation)
        pos = end
    tail = data[-TAIL_BYTES:] if len(data) == size else os.pread(fd, TAIL_BYTES, max(0, size - TAIL_BYTES))
    return Header("jpeg", width, height, "" if b"\xff\xd9" in tail else "truncated", orientation)


def _read_to(fd: int, data: bytes, end: int, size: int) -> bytes:
    """data (the file's first bytes), read on so that it reaches end when the file is that long."""
    if end > len(data) and len(data) < size:
        data += os.pread(fd, end - len(data), len(data))
    return data


def _exif_orientation(app1: bytes) -> int:
    """The Orientation tag (0x0112) of IFD0 in an APP1 Exif payload, or 0."""
    if not app1.startswith(b"Exif\x00\x00") or len(app1) < 14:
        return 0
    tiff = app1[6:]
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None:
        return 0
    (ifd,) = struct.unpack_from(order + "I", tiff, 4)
    if ifd + 2 > len(tiff):
        return 0
    (count,) = struct.unpack_from(order + "H", tiff, ifd)
    for entry in range(ifd + 2, min(ifd + 2 + 12 * count, len(tiff) - 11), 12):
        tag, kind = struct.unpack_from(order + "HH", tiff, entry)
        if tag == 0x0112 and kind == 3:
            return struct.unpack_from(order + "H", tiff, entry + 8)[0]
    return 0


def _png(fd: int, head: bytes, size: int) -> Header:
    if len(head) < 24 or head[12:16] != b"IHDR":
        return Header("png", 0, 0, "truncated" if size < 24 else "corrupt", 0)
    width, height = struct.unpack_from(">II", head, 16)
    tail = head[-len(PNG_IEND) :] if len(head) == size else os.pread(fd, len(PNG_IEND), size - len(PNG_IEND))
    return Header("png", width, height, "" if tail == PNG_IEND else "truncated", 0)


def _jpeg_deep(data: bytes) -> Header:
    """Walk every marker segment and entropy-coded scan up to EOI."""
    width = height = orientation = 0
    pos, frame = 2, False
    while pos + 2 <= len(data):
        if data[pos] != 0xFF:
            return Header("jpeg", width, height, "corrupt", orientation)
        marker = data[pos + 1]
        if marker == 0xD9:
            ok = frame and len(data) - pos - 2 <= TAIL_BYTES
            return Header("jpeg", width, height, "" if ok else "corrupt", orientation)
        if marker == 0xFF or marker in _STANDALONE:  # a fill byte, or a marker without a length
            pos += 1 if marker == 0xFF else 2
            continue
        if pos + 4 > len(data):
            break
        end = pos + 2 + ((data[pos + 2] << 8) | data[pos + 3])
        if end > len(data):
            break
        if marker in _SOF:
            height, width = struct.unpack_from(">HH", data, pos + 5)
            frame = True
        elif marker == 0xE1:
            orientation = orientation or _exif_orientation(data[pos + 4 : end])
        elif marker == 0xDA and not frame:  # a scan before any frame header
            return Header("jpeg", 0, 0, "corrupt", orientation)
        pos = _scan_end(data, end) if marker == 0xDA else end
    return Header("jpeg", width, height, "truncated", orientation)


def _scan_end(data: bytes, pos: int) -> int:
    """Where the entropy-coded data that starts at pos ends: the next marker other than RSTn."""
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= len(data):
            return len(data)
        following = data[pos + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
            pos += 1 if following == 0xFF else 2
            continue
        return pos


def _png_deep(data: bytes) -> Header:
    """Check every chunk's CRC, then inflate the image data and compare its length with IHDR."""
    width = height = 0
    pos, idat = 8, []
    header = None
    while pos + 12 <= len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if pos + 12 + length > len(data):
            break
        (crc,) = struct.unpack_from(">I", data, pos + 8 + length)
        if zlib.crc32(kind + body) != crc:
            return Header("png", width, height, "corrupt", 0)
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
            width, height = header[:2]
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            return Header("png", width, height, _png_data_problem(header, b"".join(idat)), 0)
        pos += 12 + length
    return Header("png", width, height, "truncated", 0)


def _png_data_problem(header: tuple | None, compressed: bytes) -> str:
    if header is None or not compressed:
        return "corrupt"
    width, height, depth, colour, _, _, interlace = header
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(compressed)
    except zlib.error:
        return "corrupt"
    if not inflater.eof:
        return "truncated"
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour, 0)
    expected = height * (1 + (width * channels * depth + 7) // 8)
    return "" if interlace or len(raw) == expected else "corrupt"


# A baseline JPEG for a solid colour: every 8x8 block has only a DC coefficient, so after the first
# block each one codes "no change" plus end-of-block. Tables: standard luminance DC, one-symbol AC.
_DC_BITS = bytes([0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0])
_DC_VALUES = bytes(range(12))
_AC_BITS = bytes([1] + [0] * 15)
_AC_VALUES = b"\x00"  # EOB only
_QUANT = 8  # every coefficient divided by 8: the DC of a block is then its level minus 128


def _huffman_codes(bits: bytes, values: bytes) -> dict[int, tuple[int, int]]:
    """Canonical Huffman codes (code, length) for each symbol, as JPEG defines them."""
    codes, code, index = {}, 0, 0
    for length, count in enumerate(bits, start=1):
        for _ in range(count):
            codes[values[index]] = (code, length)
            code += 1
            index += 1
        code <<= 1
    return codes


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


@lru_cache(maxsize=256)
def jpeg_bytes(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A valid baseline JPEG of the given size, filled with one colour."""
    r, g, b = rgb
    levels = (
        0.299 * r + 0.587 * g + 0.114 * b,
        128 - 0.168736 * r - 0.331264 * g + 0.5 * b,
        128 + 0.5 * r - 0.418688 * g - 0.081312 * b,
    )
    dc_codes = _huffman_codes(_DC_BITS, _DC_VALUES)
    eob = "{:0{}b}".format(*_huffman_codes(_AC_BITS, _AC_VALUES)[0])
    bits = []
    for level in levels:  # the first block of each component: its DC, as a difference from 0
        dc = min(127, max(-128, round((level - 128) * 8 / _QUANT)))
        category = abs(dc).bit_length()
        bits.append("{:0{}b}".format(*dc_codes[category]))
        bits.append(format(dc if dc >= 0 else dc + (1 << category) - 1, f"0{category}b") if category else "")
        bits.append(eob)
    blocks = ((width + 7) // 8) * ((height + 7) // 8) - 1
    bits.append(("{:0{}b}".format(*dc_codes[0]) + eob) * (3 * blocks))
    stream = "".join(bits)
    stream += "1" * (-len(stream) % 8)
    scan = int(stream, 2).to_bytes(len(stream) // 8, "big").replace(b"\xff", b"\xff\x00")
    components = b"".join(struct.pack(">BBB", cid, 0x11, 0) for cid in (1, 2, 3))
    return b"".join(
        (
            b"\xff\xd8",
            _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"),
            _segment(0xDB, b"\x00" + bytes([_QUANT]) * 64),
            _segment(0xC0, struct.pack(">BHHB", 8, height, width, 3) + components),
            _segment(0xC4, b"\x00" + _DC_BITS + _DC_VALUES + b"\x10" + _AC_BITS + _AC_VALUES),
            _segment(0xDA, b"\x03" + b"".join(struct.pack(">BB", cid, 0) for cid in (1, 2, 3)) + b"\x00\x3f\x00"),
            scan,
            b"\xff\xd9",
        )
    )
