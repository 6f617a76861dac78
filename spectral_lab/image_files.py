"""Reading image files into the lab's arrays: photographs (8- and 16-bit, grey or colour),
anti-aliased down-sampling, centre crops, inpainting masks, and matplotlib's bundled sample
photograph. Arrays are float32 ``(C, H, W)`` in [0, 1]; every failure is a one-line
`SignalError` naming the file."""

from __future__ import annotations

import numbers
import os
from pathlib import Path

import numpy as np

from spectral_lab.errors import SignalError

__all__ = ["sample_image_path", "load_image", "load_mask", "image_channels", "image_size"]

# ITU-R BT.601 luma weights, the ones PIL's "L" conversion uses.
_LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])


def _check_factor(name: str, value: object) -> None:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise SignalError(f"{name} must be an integer >= 1, got {value!r}")



def sample_image_path() -> Path:
    """Path of the photograph bundled with matplotlib (``grace_hopper.jpg``, 512 x 600 RGB).

    Returns
    -------
    pathlib.Path
        An existing JPEG file; ``load_image`` reads it as shape ``(3, 600, 512)``.
    """
    from matplotlib import cbook

    path = Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    if not path.is_file():
        raise SignalError(f"matplotlib's sample image is missing: {path}")
    return path


def _pil_to_array(image, path: Path) -> np.ndarray:
    """(C, H, W) float64 in [0, 1] from a PIL image, C = 1 (grey) or 3 (colour); alpha dropped."""
    mode = image.mode
    if mode in ("1", "L", "LA", "La"):
        grey = np.asarray(image.convert("L"), dtype=np.float64) / 255.0
        return grey[None]
    if mode.startswith("I;16") or mode == "I":
        # 16-bit greyscale PNG/TIFF; PIL reads it as "I;16*" (newer) or "I" (older).
        grey = np.asarray(image, dtype=np.float64)
        if grey.min() < 0 or grey.max() > 65535:
            raise SignalError(f"integer image {path} has values outside the 16-bit range")
        return grey[None] / 65535.0
    if mode in ("P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"):
        rgb = np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0
        return np.moveaxis(rgb, -1, 0)
    raise SignalError(f"image {path} has unsupported pixel mode {mode!r}")


def _downsample(channels: np.ndarray, factor: int, path: Path) -> np.ndarray:
    """Lanczos (PIL) downsampling by an exact integer factor, centred; float in, float out."""
    from PIL import Image

    _, height, width = channels.shape
    out_h, out_w = height // factor, width // factor
    if out_h == 0 or out_w == 0:
        raise SignalError(
            f"image {path} of size {height}x{width} is smaller than downsample={factor}"
        )
    # Use the central (out_h*factor, out_w*factor) block so the scale is exactly `factor`.
    top = (height - out_h * factor) // 2
    left = (width - out_w * factor) // 2
    box = (left, top, left + out_w * factor, top + out_h * factor)
    resized = [
        np.asarray(
            Image.fromarray(channel.astype(np.float32)).resize(
                (out_w, out_h), Image.Resampling.LANCZOS, box=box
            ),
            dtype=np.float64,
        )
        for channel in channels
    ]
    # Lanczos rings slightly past sharp edges; clip back to the image range.
    return np.clip(np.stack(resized), 0.0, 1.0)


def load_image(
    path: str | os.PathLike,
    *,
    grey: bool = False,
    downsample: int = 1,
    crop_multiple: int = 1,
) -> np.ndarray:
    """Read a PNG/JPEG (any format PIL reads) as a float image in [0, 1].

    Steps, in order: decode; map the pixel mode to grey (``1, L, LA``: C = 1; 16-bit ``I;16``
    and ``I``: C = 1, divided by 65535) or colour (``RGB, RGBA, P, CMYK, ...``: C = 3); drop
    any alpha channel (no compositing); if ``grey``, convert colour to luminance
    ``0.299 R + 0.587 G + 0.114 B`` (ITU-R BT.601) in float64; if ``downsample > 1``, shrink
    by that exact factor with PIL's Lanczos filter (anti-aliased; the central
    ``(H // f) * f`` by ``(W // f) * f`` block is used, then values are clipped to [0, 1]);
    finally centre-crop H and W down to multiples of ``crop_multiple``.

    Parameters
    ----------
    path : str or os.PathLike
        Image file.
    grey : bool
        Return one luminance channel instead of the file's channels.
    downsample : int
        Integer factor >= 1 (the papers downsampled x4).
    crop_multiple : int
        Integer >= 1, usually the network's total stride; the crop removes fewer than
        ``crop_multiple`` rows and columns, split evenly (the extra one at the end).

    Returns
    -------
    np.ndarray
        Shape ``(C, H, W)``, float32, values in [0, 1]; C = 1 for grey files or
        ``grey=True``, else 3.

    Raises
    ------
    SignalError
        If the file is missing or not a readable image (the message names the path), a
        parameter is invalid, or the image is smaller than ``downsample`` or
        ``crop_multiple``.
    """
    _check_factor("downsample", downsample)
    _check_factor("crop_multiple", crop_multiple)
    path = Path(path)
    channels = _read_image(path)

    if grey and channels.shape[0] == 3:
        channels = np.tensordot(_LUMA_WEIGHTS, channels, axes=1)[None]
    if downsample > 1:
        channels = _downsample(channels, downsample, path)

    return np.ascontiguousarray(_center_crop(channels, crop_multiple, path), dtype=np.float32)


def _png_sixteen_bit_colour(path: Path) -> bool:
    """True for a PNG of 16 bits per sample in colour (or grey with alpha): PIL reads those as
    8-bit images, dropping the low byte of every sample."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(26)
    except OSError:
        return False
    return head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) == 26 and head[24] == 16 and head[25] in (2, 4, 6)


def _read_sixteen_bit_png(path: Path) -> np.ndarray:
    """Decode a 16-bit PNG (grey + alpha, RGB, RGBA; not interlaced) with zlib: PIL, and
    imageio through it, keep only 8 bits of such files."""
    import struct
    import zlib

    data = path.read_bytes()
    pos, chunks, idat = 8, {}, []
    try:
        while pos < len(data):
            length, kind = struct.unpack(">I4s", data[pos:pos + 8])
            body = data[pos + 8: pos + 8 + length]
            if kind == b"IDAT":
                idat.append(body)
            else:
                chunks.setdefault(kind, body)
            pos += 12 + length
            if kind == b"IEND":
                break
        width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
        raw = zlib.decompress(b"".join(idat))
    except (KeyError, struct.error, zlib.error) as exc:
        raise SignalError(f"cannot read image {path}: a damaged PNG ({exc})") from None
    if interlace:
        raise SignalError(f"cannot read image {path}: interlaced 16-bit PNGs are not supported (save it without "
                          "interlacing)")
    samples = {2: 3, 4: 2, 6: 4}[colour]
    bpp, stride = 2 * samples, 2 * samples * width
    rows = np.frombuffer(raw, dtype=np.uint8)
    if rows.size != height * (stride + 1):
        raise SignalError(f"cannot read image {path}: a truncated PNG")
    rows = rows.reshape(height, stride + 1)
    out = np.zeros((height, stride), dtype=np.int64)
    for y in range(height):  # undo the scanline filters (PNG spec, section 9)
        kind, line = rows[y, 0], rows[y, 1:].astype(np.int64)
        prior = out[y - 1] if y else np.zeros(stride, dtype=np.int64)
        if kind == 0:
            out[y] = line
        elif kind == 2:
            out[y] = (line + prior) & 255
        elif kind in (1, 3, 4):
            cur = out[y]
            for x in range(stride):
                left = cur[x - bpp] if x >= bpp else 0
                up, up_left = prior[x], prior[x - bpp] if x >= bpp else 0
                if kind == 1:
                    pred = left
                elif kind == 3:
                    pred = (left + up) // 2
                else:
                    p = left + up - up_left
                    pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                    pred = left if pa <= pb and pa <= pc else (up if pb <= pc else up_left)
                cur[x] = (line[x] + pred) & 255
        else:
            raise SignalError(f"cannot read image {path}: unknown PNG filter {kind}")
    values = (out[:, 0::2] << 8 | out[:, 1::2]).reshape(height, width, samples)
    channels = np.moveaxis(values.astype(np.float64) / 65535.0, -1, 0)
    if samples in (2, 4):  # drop the alpha channel, as for 8-bit images
        channels = channels[:-1]
    return channels


def _read_image(path: Path) -> np.ndarray:
    """(C, H, W) float64 in [0, 1] of an image file; SignalError naming the path otherwise."""
    from PIL import Image, UnidentifiedImageError

    if not path.exists():
        raise SignalError(f"image file not found: {path}")
    if not path.is_file():
        raise SignalError(f"image path is not a file: {path}")
    if _png_sixteen_bit_colour(path):
        return _read_sixteen_bit_png(path)
    try:
        with Image.open(path) as image:
            image.load()
            return _pil_to_array(image, path)
    except SignalError:
        raise
    except UnidentifiedImageError as exc:
        raise SignalError(f"not an image file: {path}") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        # PIL raises these for truncated or corrupt files.
        raise SignalError(f"cannot read image {path}: {exc}") from exc


def _center_crop(channels: np.ndarray, multiple: int, path: Path) -> np.ndarray:
    """Centre-crop H and W down to multiples of ``multiple`` (the extra row/column at the end)."""
    _, height, width = channels.shape
    if height < multiple or width < multiple:
        raise SignalError(f"image {path} of size {height}x{width} is smaller than crop_multiple={multiple}")
    crop_h, crop_w = height - height % multiple, width - width % multiple
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    return channels[:, top : top + crop_h, left : left + crop_w]


def load_mask(path: str | os.PathLike, *, size: tuple[int, int], downsample: int = 1,
              crop_multiple: int = 1) -> np.ndarray:
    """An inpainting mask image as ``(1, H, W)`` uint8, 1 = known, brought to the grid of an
    image loaded with the same ``downsample`` and ``crop_multiple`` (`load_image`).

    Any nonzero pixel (in any channel) is known. Down-sampling keeps a pixel of the coarse
    grid known only when every pixel of its ``downsample`` × ``downsample`` block is (a
    minimum over the block, of the same central block `load_image` uses): a hole never
    shrinks. ``size`` is the (H, W) of the image the mask belongs to, before down-sampling;
    a mask of another size is refused.
    """
    path = Path(path)
    raw = _read_image(path)
    known = (raw != 0).any(axis=0)
    if tuple(known.shape) != tuple(size):
        raise SignalError(f"mask {path} is {known.shape[0]}x{known.shape[1]} but the image is "
                          f"{size[0]}x{size[1]}: the mask must have the image's size")
    if downsample > 1:
        h, w = known.shape[0] // downsample, known.shape[1] // downsample
        top, left = (known.shape[0] - h * downsample) // 2, (known.shape[1] - w * downsample) // 2
        block = known[top: top + h * downsample, left: left + w * downsample]
        known = block.reshape(h, downsample, w, downsample).all(axis=(1, 3))
    return np.ascontiguousarray(_center_crop(known[None], crop_multiple, path), dtype=np.uint8)


def image_channels(path: str | os.PathLike, *, grey: bool = False) -> int:
    """Channels `load_image` gives for a file (1 grey, 3 colour), read from its header."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as im:
            mode = im.mode
    except FileNotFoundError:
        raise SignalError(f"image file not found: {path}") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise SignalError(f"not an image file: {path} ({exc})") from None
    return 1 if grey or mode in ("1", "L", "LA", "La", "I", "F") or mode.startswith("I;16") else 3


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(H, W) of an image file, read from its header; SignalError if it is not one."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as im:
            return im.size[1], im.size[0]
    except FileNotFoundError:
        raise SignalError(f"image file not found: {path}") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise SignalError(f"not an image file: {path} ({exc})") from None
