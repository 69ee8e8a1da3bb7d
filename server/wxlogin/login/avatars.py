"""Avatars from the mini program's fill-in UI (`chooseAvatar` gives a temporary local file).

Only a real image is kept, and never as it came: decoded by Pillow under a pixel cap (so a
decompression bomb is refused before it is decoded), turned upright, cropped square, resized and
re-encoded as a fresh JPEG, which carries no metadata (EXIF, GPS, comments) of the original.
"""

from __future__ import annotations

import asyncio
import io

from PIL import Image, ImageOps

from ..errors import BadInput

SIDE = 256
MAX_PIXELS = 2048 * 2048  # uploads are under 64 KiB: anything larger is a trick
MAX_ASPECT = 4
FORMATS = {"JPEG", "PNG", "WEBP", "GIF"}

# Pillow refuses (or warns about) images above this before decoding them.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


class AvatarRefused(BadInput):
    code = "invalid_avatar"
    default_message = (
        "The avatar must be a JPEG, PNG, WebP or GIF image of at most 2048×2048, not too "
        "narrow."
    )


def reencode(data: bytes) -> bytes:
    try:
        with Image.open(io.BytesIO(data)) as original:
            if original.format not in FORMATS:
                raise AvatarRefused()
            width, height = original.size
            if not 0 < width * height <= MAX_PIXELS or max(width, height) > MAX_ASPECT * min(
                width, height
            ):
                raise AvatarRefused()
            original.draft("RGB", (SIDE * 2, SIDE * 2))  # JPEG: decode at a reduced scale
            upright = ImageOps.exif_transpose(original).convert("RGB")
    except AvatarRefused:
        raise
    except Exception:  # Pillow fails in many ways on hostile input; all mean "not an image"
        raise AvatarRefused() from None
    square = ImageOps.fit(upright, (SIDE, SIDE), Image.Resampling.LANCZOS)
    # Pixels only: `info` carries the original's comments (JPEG COM, GIF), which the JPEG
    # writer would copy out again.
    clean = Image.new("RGB", square.size)
    clean.paste(square)
    out = io.BytesIO()
    clean.save(out, "JPEG", quality=85, optimize=True)
    return out.getvalue()


async def process(data: bytes, turns: asyncio.Semaphore) -> bytes:
    """Off the event loop, a few at a time: decoding is CPU work, and a flood of uploads
    should queue rather than take every core."""
    async with turns:
        return await asyncio.to_thread(reencode, data)
