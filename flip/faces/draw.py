"""Pictures for `--draw`: each face's box and its answer, readable at any image size.

Design choices:
- Line width and font size scale with the image (the font is 1/36 of the shorter side, at least
  12 px: 30 px on a 1080 px photo), using Pillow's bundled scalable font, so labels stay readable
  on phone photos and on 112 px crops alike.
- A label sits on a filled band above its box (below it when the box touches the top), in the
  box's colour with white or black text, whichever contrasts more.
- Files are written to a temporary name in the target folder and renamed: a half-written
  picture never takes the place of a finished one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from flip.processor import load_image

__all__ = ["PALETTE", "font_size", "draw_faces", "save_drawing", "drawing_path"]

#: Box colours, by face: distinct on photos, readable under white or black text.
PALETTE = ((46, 204, 113), (52, 152, 219), (231, 76, 60), (241, 196, 15), (155, 89, 182), (26, 188, 156),
           (230, 126, 34), (236, 240, 241))


def font_size(width: int, height: int) -> int:
    """Label height in pixels for an image of this size."""
    return max(12, round(min(width, height) / 36))


def draw_faces(image, boxes: Sequence[Sequence[float]], labels: Sequence[str],
               colours: Sequence[tuple[int, int, int]] | None = None):
    """A copy of `image` (PIL RGB) with each box (x0, y0, x1, y1) and its label (may hold newlines)."""
    from PIL import ImageDraw, ImageFont

    if len(boxes) != len(labels):
        raise ValueError(f"draw_faces: {len(boxes)} boxes but {len(labels)} labels")
    canvas = load_image(image).copy()
    pen = ImageDraw.Draw(canvas)
    size = font_size(*canvas.size)
    font = ImageFont.load_default(size=size)
    width = max(1, round(size / 8))
    pad = max(1, size // 6)
    for i, (box, label) in enumerate(zip(boxes, labels)):
        colour = tuple(colours[i]) if colours is not None else PALETTE[i % len(PALETTE)]
        x0, y0, x1, y1 = (float(v) for v in box)
        pen.rectangle((x0, y0, x1, y1), outline=colour, width=width)
        if not label:
            continue
        left, top, right, bottom = pen.multiline_textbbox((0, 0), label, font=font)
        text_w, text_h = right - left + 2 * pad, bottom - top + 2 * pad
        tx = min(max(0.0, x0), max(0.0, canvas.width - text_w))
        ty = y0 - text_h if y0 - text_h >= 0 else min(y1, canvas.height - text_h)
        pen.rectangle((tx, ty, tx + text_w, ty + text_h), fill=colour)
        ink = (0, 0, 0) if sum(c * w for c, w in zip(colour, (0.299, 0.587, 0.114))) > 150 else (255, 255, 255)
        pen.multiline_text((tx + pad - left, ty + pad - top), label, fill=ink, font=font)
    return canvas


def drawing_path(directory: str | os.PathLike, image_path: str | os.PathLike) -> Path:
    """Where `--draw DIR` puts the picture of `image_path`: DIR/<stem>.faces.png."""
    return Path(directory) / f"{Path(image_path).stem}.faces.png"


def save_drawing(canvas, path: str | os.PathLike) -> Path:
    """Write a drawing as PNG through a temporary file in the same folder, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        canvas.save(tmp, format="PNG")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
