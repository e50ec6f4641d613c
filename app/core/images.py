"""Photos from outside (scan photos, checklist evidence): the media type, size and pixel count are
checked from the bytes and the image header before any pixel is decoded.

Pillow's own guard (Image.open raising DecompressionBombError beyond 2 x MAX_IMAGE_PIXELS, warning
beyond it) fires before a caller can apply a lower limit and is not an error a caller expects, so the
header is read here with the format's plugin directly, which parses the header only. Its ancillary
chunks (PNG text, ICC profiles) are inflated with Pillow's 1 MiB limit, which raises ValueError.
"""

from __future__ import annotations

import io
from typing import Final

import msgspec

from app.core.errors import InvalidInput, TooLarge, UnsupportedMediaType

PHOTO_TYPES: Final = {"image/jpeg": "JPEG", "image/png": "PNG"}


class PhotoHeader(msgspec.Struct, frozen=True):
    format: str  # JPEG | PNG, as read from the bytes
    width: int
    height: int


def media_type_of(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


def check_photo(body: bytes, content_type: str, *, max_bytes: int, max_pixels: int, what: str = "photo") -> PhotoHeader:
    """The photo's header, or UnsupportedMediaType (415), TooLarge (413) or InvalidInput (400)."""
    from PIL import JpegImagePlugin, PngImagePlugin

    media_type = media_type_of(content_type)
    if media_type not in PHOTO_TYPES:
        raise UnsupportedMediaType(f"a {what} is image/jpeg or image/png, not {media_type or 'unnamed content'}")
    if len(body) > max_bytes:
        raise TooLarge(f"{what} exceeds {max_bytes:,} bytes", max_bytes=max_bytes)
    if not body:
        raise InvalidInput(f"the {what} is empty")
    plugin = PngImagePlugin.PngImageFile if body.startswith(b"\x89PNG") else JpegImagePlugin.JpegImageFile
    try:
        with plugin(io.BytesIO(body)) as header:
            width, height = header.size
            found = str(header.format)
    except (OSError, SyntaxError, ValueError, IndexError, KeyError, EOFError) as exc:
        raise InvalidInput(f"the {what} cannot be read as {media_type}: {exc}") from None
    if width * height > max_pixels:
        raise TooLarge(f"{what} is {width}x{height} pixels; at most {max_pixels:,}", max_pixels=max_pixels)
    return PhotoHeader(format=found, width=width, height=height)
