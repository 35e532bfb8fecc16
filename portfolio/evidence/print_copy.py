"""The print copy of a photo: upright, about 150 dpi over the printed box, JPEG.

Made when the photo is stored (so an export has nothing to prepare) and, for files stored
before this existed or brought in another way, by the export the first time it needs one. It
lives beside the original in the file store, named by the original's SHA-256; the original is
never changed and is still what a PDF attaches byte for byte.

WeasyPrint copies JPEG data straight into a PDF but re-encodes every other image, slowly, and
a camera photo is far larger than its printed box needs: printing from this copy is much faster
and makes the PDF several times smaller.

A print copy is only ever used, or made, while its original still hashes to its name: a copy
made from swapped bytes is never made, and a copy whose original has since been swapped is not
used (the export then refuses the original too). The copy itself carries no hash of its own in
the database; what a PDF attaches, and what verification checks, is the original.

HEIC and HEIF photos (the iPhone's default) are printed from their copy too: WeasyPrint and
browsers cannot read them. Pillow reads them through pillow-heif, registered here, so in every
process that prints evidence. A photo is only ever decoded here once its first decoding, when it
was uploaded, succeeded in a child process with time and memory limits (see
`portfolio.evidence.parsing.rendering`).

Kept free of the web app and the database: the PDF render processes import it.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, BinaryIO

import pillow_heif
from PIL import Image, ImageOps

from portfolio.errors import StoredFileDamaged
from portfolio.evidence.paths import object_key, object_path
from portfolio.storage import as_backend

PRINT_BOX = (1100, 1000)  # pixels: about 150 dpi over the printed image box (186 x 169 mm)
QUALITY = 82
ORIENTATION = 0x0112  # the EXIF tag
FOLDER = "print"

# Only the main image of a HEIC/HEIF file: never its thumbnails, depth maps or other parts.
pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)


def print_copy_path(store_root: Path, sha256: str) -> Path:
    """Where the print copy of the object with this hash lives (whether or not it exists)."""
    original = object_path(Path(store_root) / FOLDER, sha256)
    return original.with_name(f"{sha256}-{PRINT_BOX[0]}-{QUALITY}.jpg")


def print_copy_key(sha256: str) -> str:
    """The storage key of the print copy of the object with this hash."""
    return print_copy_path(Path(), sha256).as_posix()


def printed_size(size: tuple[int, int], orientation: int = 1) -> tuple[int, int]:
    """The stored size (before EXIF turns it upright) at which the photo fits the print box."""
    box = PRINT_BOX if orientation not in (5, 6, 7, 8) else PRINT_BOX[::-1]
    scale = min(box[0] / size[0], box[1] / size[1], 1.0)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def make_print_copy(source: Path | BinaryIO) -> bytes:
    """Return the print copy of an image file as JPEG bytes.

    :raises OSError, ValueError, Image.DecompressionBombError: not an image Pillow can read.
    """
    with Image.open(source) as image:
        # JPEG can decode straight at a half, a quarter or an eighth of its size: far faster
        # for camera photos. Ask for no less than the printed size, so only the final
        # (antialiased) reduction decides what is lost.
        image.draft("RGB", printed_size(image.size, image.getexif().get(ORIENTATION, 1)))
        upright = ImageOps.exif_transpose(image)
        if upright.mode not in ("RGB", "L"):
            background = Image.new("RGB", upright.size, (255, 255, 255))
            rgba = upright.convert("RGBA")
            background.paste(rgba, mask=rgba.getchannel("A"))
            upright = background
        upright.thumbnail(PRINT_BOX)
        out = io.BytesIO()
        upright.save(out, "JPEG", quality=QUALITY, optimize=False)
    return out.getvalue()


def ensure_print_copy(store: Any, sha256: str) -> bytes | None:
    """Return the print copy of a stored image, making it first if need be; None when the
    object is missing, no longer matches its SHA-256, or is not an image that can be printed
    from a copy. `store` is a storage backend, a `FileStore`, or a local store's folder.

    :raises ValueError: sha256 is not a SHA-256.
    """
    backend = as_backend(store)
    target = print_copy_key(sha256)
    try:
        # Checked (streamed, and remembered while the original is unchanged: cheap when
        # repeated); the copy is made from this same handle, so from the checked bytes.
        handle = backend.open_verified(object_key(sha256), sha256, route="print copy")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, StoredFileDamaged):
        return None
    with handle:
        try:
            return backend.read(target)
        except FileNotFoundError:
            pass
        try:
            data = make_print_copy(handle)
        except (OSError, ValueError, Image.DecompressionBombError):
            return None
    backend.put_bytes(target, data, durable=False)  # derived: made again if a crash loses it
    return data
