"""Avatars from the mini program's fill-in UI (`chooseAvatar` gives a temporary local file).

Only a real image is kept, and never as it came: decoded by Pillow under a pixel cap (so a
decompression bomb is refused before it is decoded), turned upright, cropped square, resized and
re-encoded as a fresh JPEG, which carries no metadata (EXIF, GPS, comments) of the original.
"""

from __future__ import annotations

import asyncio
import io

from PIL import Image, ImageOps

from .errors import BadInput

SIDE = 256
MAX_PIXELS = 4096 * 4096
FORMATS = {"JPEG", "PNG", "WEBP", "GIF"}

# Pillow refuses (or warns about) images above this before decoding them.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


class AvatarRefused(BadInput):
    code = "invalid_avatar"
    default_message = "The avatar must be a JPEG, PNG, WebP or GIF image of at most 4096×4096."


def reencode(data: bytes) -> bytes:
    try:
        with Image.open(io.BytesIO(data)) as original:
            if original.format not in FORMATS:
                raise AvatarRefused()
            width, height = original.size
            if not 0 < width * height <= MAX_PIXELS:
                raise AvatarRefused()
            upright = ImageOps.exif_transpose(original).convert("RGB")
    except AvatarRefused:
        raise
    except Exception:  # Pillow fails in many ways on hostile input; all mean "not an image"
        raise AvatarRefused() from None
    square = ImageOps.fit(upright, (SIDE, SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    square.save(out, "JPEG", quality=85, optimize=True)  # no exif= passed: none is written
    return out.getvalue()


async def process(data: bytes) -> bytes:
    """Off the event loop: decoding is CPU work."""
    return await asyncio.to_thread(reencode, data)
