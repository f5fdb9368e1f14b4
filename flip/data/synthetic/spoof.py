"""Presentation attacks: the same synthetic faces shown to the camera as spoofs, one renderer each.

CLIPC8 (see papers.md) divides the liveness attacks met in finance into eight categories; four are
named in the paper (dark environment, tampered ID-card photo, printed photo, screen replay). The
other four are chosen here from the standard presentation-attack taxonomy (ISO/IEC 30107 and the
anti-spoofing benchmarks: OULU-NPU, CASIA-SURF, SiW-M): paper cut-out mask, 3D mask, warped
(curved) print and digitally swapped face. `ATTACKS` holds the eight, with the physical cue each
renderer draws; keep the keys in sync with the liveness prompt file.

Design choices
- Every attack starts from the same `Face` that a live image would show, and the attribute labels
  of a spoof record are those of the presented face. Where an attack needs a second person (the
  wearer of a mask, the source of a swapped face) that person is a look-alike: same labels, new
  hidden geometry, so the labels still describe what the image shows.
- The cue is drawn, not implied: halftone dots and paper grain for prints, moire, sub-pixel stripes
  and a bezel for screens, cut edges and eye holes for paper masks, plastic sheen and a seam for
  3D masks, a bent outline and shading for warped prints, a blended seam with colour and
  resolution mismatch for swaps, under-exposure and sensor noise for darkness, a card with
  guilloche, text and a pasted-over photo for ID cards.
- Live images and attacks pass through the same camera nuisances (lighting, tint, blur, noise,
  JPEG), so those carry no information about liveness.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from flip.data.synthetic.faces import Face, Identity
from flip.data.synthetic.render import (
    SKIN_RGB,
    FaceLayout,
    Nuisance,
    apply_nuisance,
    draw_background,
    render_face,
    sample_nuisance,
)

#: attack key -> (short description, the physical cue the renderer draws)
ATTACKS: dict[str, tuple[str, str]] = {
    "dark_environment": ("an attack presented in a dark environment",
                         "severe under-exposure, sensor noise and a colour cast"),
    "id_card": ("a tampered ID-card photo",
                "a card with guilloche pattern and text lines, a small face photo pasted over its box"),
    "printed_photo": ("a printed photo of a face",
                      "paper border, halftone dots, paper grain, faded ink, fingers holding it"),
    "screen_replay": ("a face replayed on a screen",
                      "device bezel, moire bands, sub-pixel stripes, screen glare, a blue cast"),
    "paper_mask": ("a paper cut-out mask",
                   "a flat printed face with a white cut edge and eye holes, worn over a real head"),
    "3d_mask": ("a 3D mask",
                "smooth plastic skin with specular highlights, hollow eyes and a seam at the edge"),
    "warped_print": ("a warped, curved printed photo",
                     "a print bent into a curve: curved edges, shading across the bend, halftone"),
    "face_swap": ("a digitally swapped face",
                  "a blended seam around the inner face with colour and sharpness mismatch"),
}
ATTACK_NAMES = tuple(ATTACKS)


def lookalike(person: Identity, rng: np.random.Generator) -> Identity:
    """Another person with the same labels (new hidden geometry), e.g. a mask's wearer."""
    return replace(
        person,
        identity=person.identity + "~lookalike",
        eye_spacing=float(rng.uniform(0.37, 0.47)),
        eye_size=float(rng.uniform(0.88, 1.12)),
        feature_shift=float(rng.uniform(-0.06, 0.06)),
        nose_length=float(rng.uniform(0.85, 1.15)),
        mouth_width=float(rng.uniform(0.85, 1.15)),
        skin_shift=tuple(int(v) for v in rng.integers(-14, 15, 3)),
    )


def _camera(nuisance: Nuisance) -> Nuisance:
    """Only the camera part of a nuisance: lighting, tint, blur, noise, JPEG."""
    return replace(nuisance, scale=1.0, dx=0.0, dy=0.0, background="plain")


def _rgb(rng: np.random.Generator, lo: int, hi: int) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(lo, hi, 3))


def _outline_mask(layout: FaceLayout, size: tuple[int, int], grow: float = 1.0) -> Image.Image:
    """An 'L' mask of the head outline (optionally grown about its centre)."""
    pts = layout.outline
    c = pts.mean(axis=0)
    pts = c + (pts - c) * grow
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).polygon(pts.ravel().tolist(), fill=255)
    return mask


def _halftone(arr: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Multiply by a rotated dot screen (period 2.5-4 px), as a printer's halftone does."""
    h, w = arr.shape[:2]
    period, angle = rng.uniform(2.5, 4.0), rng.uniform(0, np.pi / 2)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    u = (x * np.cos(angle) + y * np.sin(angle)) * (2 * np.pi / period)
    v = (-x * np.sin(angle) + y * np.cos(angle)) * (2 * np.pi / period)
    dots = 0.5 + 0.5 * np.cos(u) * np.cos(v)
    return arr * (1 - strength * dots[..., None])


def _print_look(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A photo as printed on paper: faded, desaturated ink, halftone, paper grain and a white border."""
    arr = np.asarray(image, dtype=np.float32)
    grey = arr.mean(axis=2, keepdims=True)
    arr = grey + (arr - grey) * rng.uniform(0.55, 0.8)  # desaturated
    arr = 35 + arr * rng.uniform(0.72, 0.85)  # ink never reaches black, paper never white
    arr = _halftone(arr, rng, rng.uniform(0.18, 0.3))
    h, w = arr.shape[:2]
    grain = rng.normal(0, 1, (h // 4 + 1, w // 4 + 1)).astype(np.float32)
    grain = np.kron(grain, np.ones((4, 4), np.float32))[:h, :w]
    arr = arr + 6 * grain[..., None] + rng.normal(0, 4, arr.shape).astype(np.float32)
    printed = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    border = max(2, int(w * rng.uniform(0.04, 0.08)))
    paper = Image.new("RGB", (w + 2 * border, h + 2 * border), _rgb(rng, 228, 250))
    paper.paste(printed, (border, border))
    return paper


def _draw_fingers(image: Image.Image, rng: np.random.Generator, anchor: tuple[float, float], size: int) -> None:
    """Two or three fingers gripping an item's edge near `anchor` (the thumb over its face)."""
    d = ImageDraw.Draw(image)
    skin = SKIN_RGB[list(SKIN_RGB)[int(rng.integers(len(SKIN_RGB)))]]
    fw = size * 0.07
    x0, y0 = anchor
    for k in range(int(rng.integers(2, 4))):
        x = x0 + k * fw * 1.05
        d.rounded_rectangle([x, y0 - fw * 0.8, x + fw, y0 + size * 0.35], radius=fw / 2, fill=skin,
                            outline=tuple(int(c * 0.7) for c in skin), width=max(1, size // 112))


def _hold(item: Image.Image, size: int, rng: np.random.Generator, background: Image.Image,
          scale: float, max_angle: float = 8.0, fingers: bool = True) -> Image.Image:
    """Place an RGB(A) `item` at `scale` of the frame, slightly rotated, on `background`, maybe held."""
    target = int(size * scale)
    w, h = item.size
    f = target / max(w, h)
    item = item.resize((max(1, int(w * f)), max(1, int(h * f))), Image.BILINEAR)
    if item.mode != "RGBA":
        item = item.convert("RGBA")
    item = item.rotate(float(rng.uniform(-max_angle, max_angle)), resample=Image.BILINEAR, expand=True)
    out = background.copy()
    x = int((size - item.size[0]) / 2 + rng.uniform(-0.05, 0.05) * size)
    y = int((size - item.size[1]) / 2 + rng.uniform(-0.04, 0.06) * size)
    out.paste(item, (x, y), item)
    if fingers:
        _draw_fingers(out, rng, (x + item.size[0] * rng.uniform(0.1, 0.6), y + item.size[1] * 0.93), size)
    return out


def _source(face: Face, size: int, rng: np.random.Generator, strength: float = 0.5):
    """The photo being attacked: a portrait of the face with milder nuisances."""
    return render_face(face, size, sample_nuisance(rng, strength))


# --------------------------------------------------------------------------- the eight renderers


def _printed_photo(face: Face, size: int, rng: np.random.Generator) -> Image.Image:
    photo, _ = _source(face, int(size * rng.uniform(0.75, 0.95)), rng)
    paper = _print_look(photo, rng)
    out = _hold(paper, size, rng, draw_background(size, sample_nuisance(rng)), rng.uniform(0.8, 1.0))
    glare = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    cx, cy = rng.uniform(0.2, 0.8, 2) * size
    ImageDraw.Draw(glare).ellipse([cx - size * 0.25, cy - size * 0.1, cx + size * 0.25, cy + size * 0.1],
                                  fill=(255, 255, 255, int(rng.integers(20, 60))))
    return Image.alpha_composite(out.convert("RGBA"), glare.filter(ImageFilter.GaussianBlur(size / 20))).convert("RGB")


def _warped_print(face: Face, size: int, rng: np.random.Generator) -> Image.Image:
    photo, _ = _source(face, int(size * 0.9), rng)
    paper = np.asarray(_print_look(photo, rng).convert("RGBA"), dtype=np.float32)
    h, w = paper.shape[:2]
    bend = rng.uniform(0.12, 0.25)  # vertical bulge at the middle, fraction of the height
    horizontal = rng.random() < 0.5
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    if horizontal:  # bent about a vertical axis: the middle column comes forward and looks taller
        t = (x - w / 2) / (w / 2)
        ys = h / 2 + (y - h / 2) / (1 + bend * (1 - t**2))
        xs = w / 2 + (w / 2) * np.sin(t * np.pi / 2 * 0.9) / np.sin(np.pi / 2 * 0.9)
    else:
        t = (y - h / 2) / (h / 2)
        xs = w / 2 + (x - w / 2) / (1 + bend * (1 - t**2))
        ys = h / 2 + (h / 2) * np.sin(t * np.pi / 2 * 0.9) / np.sin(np.pi / 2 * 0.9)
    shade = 0.65 + 0.35 * np.sqrt(np.clip(np.cos(t * np.pi / 2), 0, 1))
    xi, yi = np.clip(xs.round().astype(int), 0, w - 1), np.clip(ys.round().astype(int), 0, h - 1)
    inside = (np.abs(xs - w / 2) <= w / 2) & (np.abs(ys - h / 2) <= h / 2)
    if horizontal:
        inside &= np.abs(y - h / 2) <= (h / 2) * (1 + bend * (1 - t**2))
    else:
        inside &= np.abs(x - w / 2) <= (w / 2) * (1 + bend * (1 - t**2))
    warped = paper[yi, xi]
    warped[..., :3] *= shade[..., None]
    warped[..., 3] = np.where(inside, 255, 0)
    item = Image.fromarray(np.clip(warped, 0, 255).astype(np.uint8), "RGBA")
    return _hold(item, size, rng, draw_background(size, sample_nuisance(rng)), rng.uniform(0.8, 0.98), max_angle=5)


def _screen_replay(face: Face, size: int, rng: np.random.Generator) -> Image.Image:
    sw = int(size * rng.uniform(0.7, 0.9))
    photo, _ = _source(face, sw, rng)
    arr = np.asarray(photo, dtype=np.float32)
    arr = 255 * (arr / 255) ** 0.8 * np.array([0.92, 0.98, 1.08], np.float32)  # bright, blue cast
    y, x = np.mgrid[0:sw, 0:sw].astype(np.float32)
    freq, angle = rng.uniform(0.06, 0.16), rng.uniform(0, np.pi)
    phase = (x * np.cos(angle) + y * np.sin(angle)) * 2 * np.pi * freq
    amp = rng.uniform(0.1, 0.2)
    moire = 1 + amp * np.stack([np.cos(phase), np.cos(phase + 2.1), np.cos(phase + 4.2)], axis=-1)
    stripes = np.ones((1, sw, 3), np.float32)  # R, G, B sub-pixel columns
    for c in range(3):
        stripes[0, c::3, :] = 0.82
        stripes[0, c::3, c] = 1.0
    arr = arr * moire * stripes
    screen = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    bezel = max(3, int(sw * rng.uniform(0.06, 0.12)))
    device = Image.new("RGBA", (sw + 2 * bezel, sw + 3 * bezel), (0, 0, 0, 0))
    d = ImageDraw.Draw(device)
    d.rounded_rectangle([0, 0, device.size[0] - 1, device.size[1] - 1], radius=bezel * 1.5, fill=_rgb(rng, 10, 45))
    device.paste(screen, (bezel, bezel))
    d.ellipse([device.size[0] / 2 - bezel / 4, bezel / 3, device.size[0] / 2 + bezel / 4, bezel / 3 + bezel / 2],
              fill=(70, 70, 80))
    glare = Image.new("RGBA", device.size, (0, 0, 0, 0))
    gx = rng.uniform(0.1, 0.7) * device.size[0]
    ImageDraw.Draw(glare).polygon([gx, 0, gx + sw * 0.25, 0, gx - sw * 0.1, device.size[1], gx - sw * 0.35,
                                   device.size[1]], fill=(255, 255, 255, int(rng.integers(25, 60))))
    device = Image.alpha_composite(device, glare)
    return _hold(device, size, rng, draw_background(size, sample_nuisance(rng)), rng.uniform(0.85, 1.0),
                 fingers=rng.random() < 0.6)


def _id_card(face: Face, size: int, rng: np.random.Generator) -> Image.Image:
    cw = int(size * 1.6)
    ch = int(cw / 1.586)
    card = Image.new("RGB", (cw, ch), _rgb(rng, 190, 245))
    arr = np.asarray(card, dtype=np.float32)
    y, x = np.mgrid[0:ch, 0:cw].astype(np.float32)
    f1, f2 = rng.uniform(0.05, 0.12, 2)
    guilloche = np.cos(2 * np.pi * (f1 * x + 6 * np.sin(2 * np.pi * f2 * y / 4)))
    arr = arr * (1 - 0.07 * (guilloche[..., None] > 0.7)) * np.array(rng.uniform(0.9, 1.0, 3), np.float32)
    card = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    d = ImageDraw.Draw(card)
    header = _rgb(rng, 20, 160)
    d.rectangle([0, 0, cw, ch * 0.16], fill=header)
    for k in range(int(rng.integers(3, 7))):  # the issuer's name in the header
        x0 = cw * (0.05 + 0.09 * k)
        d.rectangle([x0, ch * 0.05, x0 + cw * 0.07, ch * 0.11], fill=(240, 240, 240))
    px0, py0, pw, ph = cw * 0.06, ch * 0.24, cw * 0.3, ch * 0.66
    d.rectangle([px0, py0, px0 + pw, py0 + ph], fill=_rgb(rng, 170, 220), outline=(90, 90, 90), width=2)
    for k in range(5):  # text lines
        ly = ch * (0.3 + 0.12 * k)
        d.rectangle([cw * 0.42, ly, cw * (0.42 + rng.uniform(0.25, 0.5)), ly + ch * 0.045], fill=_rgb(rng, 30, 90))
    # the tampering: a different photo pasted over the box, a little off and tilted, with a shadow
    photo, _ = _source(face, int(ph), rng, strength=0.3)
    photo = photo.crop((int(ph * 0.12), 0, int(ph * 0.88), int(ph)))
    photo = photo.convert("RGBA").rotate(float(rng.uniform(-5, 5)), resample=Image.BILINEAR, expand=True)
    ox, oy = int(px0 + rng.uniform(-0.08, 0.08) * pw), int(py0 + rng.uniform(-0.06, 0.06) * ph)
    shadow = Image.new("RGBA", photo.size, (0, 0, 0, 90))
    card.paste(shadow, (ox + 3, oy + 3), photo)
    card.paste(photo, (ox, oy), photo)
    holo = Image.new("RGBA", card.size, (0, 0, 0, 0))
    hx, hy = px0 + pw * rng.uniform(0.4, 1.1), py0 + ph * rng.uniform(0.5, 0.9)
    for k, colour in enumerate(((255, 80, 80), (80, 255, 120), (90, 120, 255))):
        ImageDraw.Draw(holo).ellipse([hx - 22 + 4 * k, hy - 16, hx + 22 + 4 * k, hy + 16], fill=(*colour, 45))
    card = Image.alpha_composite(card.convert("RGBA"), holo)
    mask = Image.new("L", card.size, 0)
    ImageDraw.Draw(mask).rounded_rectangle([0, 0, cw - 1, ch - 1], radius=ch * 0.06, fill=255)
    card.putalpha(mask)
    return _hold(card, size, rng, draw_background(size, sample_nuisance(rng)), rng.uniform(0.85, 0.98), max_angle=7)


def _paper_mask(face: Face, size: int, rng: np.random.Generator) -> Image.Image:
    nuisance = sample_nuisance(rng)
    wearer = replace(face, person=lookalike(face.person, rng), emotion="neutral", makeup=False)
    scene, wearer_layout = render_face(wearer, size, nuisance)
    mask_face = replace(face, yaw=wearer.yaw, roll=wearer.roll)
    printed, layout = render_face(mask_face, size, replace(nuisance, light_strength=0.0, blur=0.0, noise=0.0,
                                                           jpeg_quality=None, background="plain"))
    arr = np.asarray(printed, dtype=np.float32)
    arr = _halftone(35 + arr * 0.8, rng, rng.uniform(0.15, 0.25))
    printed = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    cut = _outline_mask(layout, printed.size, grow=1.0)
    edge = _outline_mask(layout, printed.size, grow=1.06)
    r = layout.scale * 0.13
    for m in (cut, edge):
        d = ImageDraw.Draw(m)
        for ex, ey in layout.eyes:  # the eye holes show the wearer behind
            d.ellipse([ex - r * 1.6, ey - r, ex + r * 1.6, ey + r], fill=0)
    out = scene.copy()
    out.paste((248, 248, 244), (0, 0), edge)  # the white paper margin round the cut
    out.paste(printed, (0, 0), cut)
    d = ImageDraw.Draw(out)
    for ex, ey in layout.eyes:
        d.ellipse([ex - r * 1.6, ey - r, ex + r * 1.6, ey + r], outline=(20, 20, 20), width=max(1, size // 100))
    left, right = layout.outline[:, 0].argmin(), layout.outline[:, 0].argmax()
    for i, side in ((left, -1), (right, 1)):  # the elastic band
        x, y = layout.outline[i]
        d.line([x, y, x + side * size * 0.12, y - size * 0.05], fill=(235, 235, 235), width=max(1, size // 90))
    return out


def _3d_mask(face: Face, size: int, rng: np.random.Generator) -> Image.Image:
    image, layout = render_face(face, size, sample_nuisance(rng))
    region = _outline_mask(layout, image.size, grow=1.0)
    ImageDraw.Draw(region).rectangle([0, 0, size, layout.box[1] - 0.1 * layout.scale], fill=0)  # not the hair
    material = np.array([rng.uniform(200, 245), rng.uniform(175, 220), rng.uniform(150, 200)], np.float32)
    smooth = np.asarray(image.filter(ImageFilter.GaussianBlur(size / 70)), dtype=np.float32)
    plastic = smooth * 0.55 + material * 0.45
    mask = np.asarray(region, dtype=np.float32)[..., None] / 255
    arr = np.asarray(image, dtype=np.float32) * (1 - mask) + plastic * mask
    out = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    sheen = Image.new("RGBA", out.size, (0, 0, 0, 0))
    d = ImageDraw.Draw(sheen)
    s = layout.scale
    (lx, ly), (rx, ry) = layout.eyes
    mx, my = layout.mouth
    cx = (lx + rx) / 2
    for hx, hy, w, h in ((cx, ly - 0.55 * s, 0.35, 0.12), (lx, ly + 0.35 * s, 0.14, 0.08),
                         (rx, ry + 0.35 * s, 0.14, 0.08), (cx, (ly + my) / 2, 0.06, 0.1)):
        d.ellipse([hx - w * s, hy - h * s, hx + w * s, hy + h * s], fill=(255, 255, 255, 120))
    out = Image.alpha_composite(out.convert("RGBA"), sheen.filter(ImageFilter.GaussianBlur(size / 60))).convert("RGB")
    d = ImageDraw.Draw(out)
    for ex, ey in layout.eyes:  # hollow eyes
        d.ellipse([ex - 0.22 * s, ey - 0.11 * s, ex + 0.22 * s, ey + 0.11 * s], fill=(25, 18, 16))
        d.ellipse([ex - 0.07 * s, ey - 0.06 * s, ex + 0.07 * s, ey + 0.06 * s], fill=(70, 50, 40))
    edge = layout.outline[layout.outline[:, 1] >= layout.box[1] - 0.1 * layout.scale]
    d.line(edge.ravel().tolist(), fill=(60, 50, 45), width=max(1, size // 80))
    return out


def _face_swap(face: Face, size: int, rng: np.random.Generator) -> Image.Image:
    nuisance = sample_nuisance(rng)
    target, layout = render_face(face, size, nuisance)
    donor_face = replace(face, person=lookalike(face.person, rng))
    donor, _ = render_face(donor_face, size, nuisance)
    small = max(8, int(size * rng.uniform(0.3, 0.5)))  # a lower-resolution source
    donor = donor.resize((small, small), Image.BILINEAR).resize((size, size), Image.BILINEAR)
    shift = rng.integers(-size // 40 - 1, size // 40 + 2, 2)
    donor = donor.transform(donor.size, Image.AFFINE, (1, 0, -int(shift[0]), 0, 1, -int(shift[1])))
    arr_d = np.asarray(donor, dtype=np.float32) * rng.uniform(0.85, 1.15, 3).astype(np.float32)
    (lx, ly), (rx, ry) = layout.eyes
    mx, my = layout.mouth
    cx, cy = (lx + rx + 2 * mx) / 4, (ly + ry + 2 * my) / 4 - 0.05 * layout.scale
    ax, ay = 0.9 * abs(rx - lx) + 0.15 * layout.scale, 0.85 * abs(my - ly) + 0.35 * layout.scale
    mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask).ellipse([cx - ax, cy - ay, cx + ax, cy + ay], fill=255)
    soft = np.asarray(mask.filter(ImageFilter.GaussianBlur(size / 50)), dtype=np.float32)[..., None] / 255
    arr = np.asarray(target, dtype=np.float32) * (1 - soft) + arr_d * soft
    seam = (soft > 0.2) & (soft < 0.8)  # the blending boundary is brighter and smoother
    arr = np.where(seam, arr * 1.08 + 6, arr)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def _dark_environment(face: Face, size: int, rng: np.random.Generator) -> Image.Image:
    medium = _printed_photo if rng.random() < 0.5 else _screen_replay
    image = medium(face, size, rng)
    arr = np.asarray(image, dtype=np.float32) / 255
    gain = rng.uniform(0.15, 0.35)
    cast = np.array([(1.0, 1.0, 1.2), (0.9, 1.15, 0.9), (1.2, 1.0, 0.8)][int(rng.integers(3))], np.float32)
    arr = 255 * gain * arr**1.3 * cast
    arr = arr + rng.normal(0, rng.uniform(4, 10), arr.shape).astype(np.float32)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB").filter(ImageFilter.GaussianBlur(size / 200))


_RENDERERS = {
    "dark_environment": _dark_environment,
    "id_card": _id_card,
    "printed_photo": _printed_photo,
    "screen_replay": _screen_replay,
    "paper_mask": _paper_mask,
    "3d_mask": _3d_mask,
    "warped_print": _warped_print,
    "face_swap": _face_swap,
}


def render_spoof(face: Face, attack: str | None, size: int, rng: np.random.Generator) -> Image.Image:
    """A `size` x `size` image of `face` presented live (`attack=None`) or as `attack`.

    Both pass through the same random camera nuisances; `rng` decides everything else.
    """
    if attack is not None and attack not in _RENDERERS:
        raise ValueError(f"attack={attack!r}: expected None (live) or one of {list(ATTACKS)}")
    camera = sample_nuisance(rng)
    if attack is None:
        image, _ = render_face(face, size, camera)
        return image
    image = _RENDERERS[attack](face, size, rng)
    return apply_nuisance(image, _camera(camera))
