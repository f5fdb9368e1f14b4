"""Drawing a `Face`: a procedural, deterministic face renderer on numpy and PIL.

Design choices
- A face lives in *face units*: x to the right, y down, the head's half width about 1, eyes near
  y = 0, chin near y = 1.3. Every point also has a depth z on an ellipsoidal head, so head yaw
  is a rotation about the vertical axis (x' = x cos(yaw) + z sin(yaw)): features and the hairline
  slide towards one cheek, the nose (deeper) slides further, one ear comes into view. Roll, scale
  and position are a 2-D similarity applied after. All shapes are polygons built with numpy and
  filled by PIL, so one face is a few dozen draw calls.
- Faces are drawn at `supersample` times the output size and reduced with a box filter, which
  anti-aliases the edges at little cost.
- Stylised, not photographic: every attribute is drawn large and with contrast so that a small
  ViT at 112 px can learn it (eyes and irises larger than life, lipstick saturated, beards solid).
  What each attribute draws is listed in `_draw_*`; the expression table (`expression.EXPRESSIONS`)
  says how each emotion moves the mouth, brows and eyes.
- Drawing is a pure function of (`Face`, `Nuisance`): fine textures (stubble dots, curls,
  clutter, noise) draw from generators seeded by the face's and the nuisance's own seeds.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from flip.data.synthetic.expression import BUSHY_BROWS, effective_expression
from flip.data.synthetic.faces import RGB, Face

SKIN_RGB: dict[str, RGB] = {
    "pale": (250, 226, 212),
    "fair": (238, 196, 160),
    "medium": (208, 156, 112),
    "olive": (182, 140, 86),
    "brown": (138, 92, 58),
    "dark": (78, 50, 36),
}
HAIR_RGB: dict[str, RGB] = {
    "black": (24, 22, 24),
    "brown": (100, 62, 34),
    "blond": (232, 196, 112),
    "red": (178, 62, 28),
    "grey": (150, 150, 152),
    "white": (240, 240, 236),
}
EYE_RGB: dict[str, RGB] = {
    "brown": (96, 52, 20),
    "blue": (45, 115, 215),
    "green": (50, 160, 70),
    "grey": (150, 160, 172),
}

#: age group -> proportions: features lower and eyes larger on children; wrinkles and a receding
#: hairline with age. eye_y: eye height; nose_drop/mouth_drop: below the eyes; chin: chin scale.
AGE_PROPORTIONS: dict[str, dict] = {
    "child": dict(eye_y=0.12, eye_scale=1.22, nose_drop=0.33, nose=0.7, mouth_drop=0.64, mouth=0.8,
                  chin=0.88, width=1.04, wrinkles=0, hairline=-0.62, brow=0.7, lip=1.0, head=0.9),
    "young adult": dict(eye_y=0.0, eye_scale=1.0, nose_drop=0.45, nose=1.0, mouth_drop=0.8, mouth=1.0,
                        chin=1.0, width=1.0, wrinkles=0, hairline=-0.72, brow=1.0, lip=1.0, head=1.0),
    "middle-aged": dict(eye_y=0.0, eye_scale=0.97, nose_drop=0.47, nose=1.05, mouth_drop=0.82, mouth=1.0,
                        chin=1.02, width=1.03, wrinkles=1, hairline=-0.8, brow=1.0, lip=0.85, head=1.0),
    "senior": dict(eye_y=0.0, eye_scale=0.93, nose_drop=0.5, nose=1.1, mouth_drop=0.85, mouth=0.97,
                   chin=1.04, width=1.02, wrinkles=2, hairline=-0.95, brow=1.05, lip=0.65, head=1.0),
}

#: face shape -> half width, chin depth, skull height and the lower-face half-width profile w(u),
#: u = y / chin in [0, 1] (1 = cheekbones, 0 = chin point).
FACE_SHAPE_GEOMETRY: dict[str, dict] = {
    "oval": dict(width=0.93, chin=1.38, top=1.35, profile=lambda u: np.sqrt(1 - u**2)),
    "round": dict(width=1.06, chin=1.16, top=1.28, profile=lambda u: (1 - u**2.2) ** (1 / 2.2)),
    "square": dict(width=1.0, chin=1.25, top=1.3, profile=lambda u: (1 - u**6) ** (1 / 6)),
    "heart": dict(width=1.03, chin=1.36, top=1.35, profile=lambda u: (1 - u) ** 0.75 * (1 + 0.55 * u)),
    "long": dict(width=0.8, chin=1.6, top=1.45, profile=lambda u: (1 - u**2.5) ** (1 / 2.5)),
}

_NOSES = {  # nose shape -> (width, tip radius, bridge bump)
    "straight": (1.0, 0.05, 0.0),
    "wide": (1.4, 0.06, 0.0),
    "narrow": (0.72, 0.04, 0.0),
    "round": (1.1, 0.095, 0.0),
    "hooked": (0.95, 0.05, 0.06),
}
_BROW_ARCH = {  # brow shape -> height profile along the brow, t in [0, 1] from inner to outer end
    "straight": lambda t: 0.02 * np.sin(np.pi * t),
    "arched": lambda t: 0.1 * np.sin(np.pi * t) ** 1.5,
    "angled": lambda t: 0.1 * np.minimum(t / 0.65, (1 - t) / 0.35),
}
_TEETH = (246, 246, 238)
_MOUTH_INSIDE = (70, 18, 28)
_SCLERA = (246, 246, 242)


@lru_cache(maxsize=256)
def _lin(start: float, stop: float, num: int) -> np.ndarray:
    """np.linspace, cached: the renderer asks for the same few parameter ranges thousands of times."""
    out = np.linspace(start, stop, num)
    out.flags.writeable = False
    return out


def _mix(a, b, t: float) -> RGB:
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b))


def _scale_rgb(c, f: float) -> RGB:
    return tuple(int(min(255, max(0, round(v * f)))) for v in c)


def _add(c, d) -> RGB:
    return tuple(int(min(255, max(0, v + w))) for v, w in zip(c, d))


def _alpha(c, a: int) -> tuple[int, int, int, int]:
    return (*c[:3], a)


class _Projector:
    """Face units (x, y, z) -> canvas pixels: yaw about the vertical axis, then roll, scale, shift."""

    def __init__(self, cx: float, cy: float, scale: float, yaw_deg: float, roll_deg: float):
        self.cx, self.cy, self.s = cx, cy, scale
        yaw, roll = np.radians(yaw_deg), np.radians(roll_deg)
        self.cyaw, self.syaw = np.cos(yaw), np.sin(yaw)
        self.a, self.b = scale * np.cos(roll), scale * np.sin(roll)  # the similarity's matrix [[a, -b], [b, a]]

    def points(self, x, y, z=0.0) -> np.ndarray:
        """(N, 2) pixel coordinates."""
        xr = np.multiply(x, self.cyaw) + np.multiply(z, self.syaw)
        y = np.asarray(y, dtype=float)
        if xr.shape != y.shape:
            xr, y = np.broadcast_arrays(xr, y)
        out = np.empty((xr.size, 2))
        out[:, 0] = (self.cx + self.a * xr - self.b * y).ravel()
        out[:, 1] = (self.cy + self.b * xr + self.a * y).ravel()
        return out

    def __call__(self, x, y, z=0.0) -> list[float]:
        """Flat [x0, y0, x1, y1, ...] for PIL."""
        return self.points(x, y, z).ravel().tolist()

    def width(self, units: float) -> int:
        return max(1, int(round(units * self.s)))


@dataclass
class FaceLayout:
    """Where a drawn face landed, in output pixels: the detection box (brows to chin, ear to ear),
    the head outline polygon (N, 2), eye and mouth centres."""

    box: tuple[float, float, float, float]
    outline: np.ndarray
    eyes: np.ndarray  # (2, 2)
    mouth: np.ndarray  # (2,)
    scale: float  # pixels per face unit

    def scaled(self, f: float) -> "FaceLayout":
        return FaceLayout(tuple(v * f for v in self.box), self.outline * f, self.eyes * f, self.mouth * f,
                          self.scale * f)


@dataclass
class _Geometry:
    """Everything `draw_face` derives from a `Face` before drawing (face units and colours)."""

    face: Face
    a: float
    chin: float
    top: float
    profile: object
    eye_y: float
    eye_x: float
    ew: float
    eh: float
    iris_r: float
    nose_y: float
    mouth_y: float
    mouth_hw: float
    age: dict
    expr: dict
    skin: RGB
    skin_dark: RGB
    skin_light: RGB
    hair: RGB
    hair_dark: RGB
    lips: RGB
    wrinkle: RGB
    extras: dict = field(default_factory=dict)

    def depth(self, x, y) -> np.ndarray:
        """Depth of a point on the front of the head (ellipsoid), larger at the centre."""
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        return 0.9 * np.sqrt(np.maximum(1 - (x / (self.a * 1.05)) ** 2 - (y / 1.7) ** 2, 0.12))

    def half_width(self, y) -> np.ndarray:
        """Half width of the head outline at height y."""
        y = np.asarray(y, dtype=float)
        upper = self.a * np.sqrt(np.clip(1 - (np.minimum(y, 0) / self.top) ** 2, 0, 1))
        lower = self.a * self.profile(np.clip(y / self.chin, 0, 1))
        return np.where(y < 0, upper, lower)


def _geometry(face: Face) -> _Geometry:
    p = face.person
    shape = FACE_SHAPE_GEOMETRY[p.face_shape]
    age = AGE_PROPORTIONS[p.age_group]
    expr = effective_expression(face)
    a = shape["width"] * age["width"] * (1.07 if p.chubby else 1.0)
    chin = shape["chin"] * age["chin"]
    eye_y = age["eye_y"] + p.feature_shift
    es = age["eye_scale"] * p.eye_size
    skin = _add(SKIN_RGB[p.skin_tone], p.skin_shift)
    hair = _add(HAIR_RGB[p.hair_color], p.hair_shift)
    lips = _mix(skin, (175, 95, 95), 0.3)
    return _Geometry(
        face=face,
        a=a,
        chin=chin,
        top=shape["top"],
        profile=shape["profile"],
        eye_y=eye_y,
        eye_x=p.eye_spacing * a * age["width"],
        ew=0.23 * es,
        eh=0.125 * es,
        iris_r=0.13 * es,
        nose_y=eye_y + age["nose_drop"] * p.nose_length,
        mouth_y=eye_y + age["mouth_drop"] * (0.5 + 0.5 * p.nose_length),
        mouth_hw=0.33 * age["mouth"] * p.mouth_width * expr["mouth_width"],
        age=age,
        expr=expr,
        skin=skin,
        skin_dark=_scale_rgb(skin, 0.82),
        skin_light=_mix(skin, (255, 255, 255), 0.12),
        hair=hair,
        hair_dark=_scale_rgb(hair, 0.72) if p.hair_color != "black" else (60, 58, 60),
        lips=lips,
        wrinkle=_scale_rgb(skin, 0.66),
    )


def _outline(g: _Geometry, n: int = 18) -> tuple[np.ndarray, np.ndarray]:
    """The head outline (skull and jaw) in face units, clockwise from the right cheekbone."""
    u = _lin(0, 1, n)
    lower_x = g.a * g.profile(u)
    lower_y = g.chin * u
    t = _lin(np.pi, 0, n)[1:-1]  # over the top, left to right
    upper_x, upper_y = g.a * np.cos(t), -g.top * np.sin(t)
    xs = np.concatenate([lower_x, -lower_x[::-1], upper_x])
    ys = np.concatenate([lower_y, lower_y[::-1], upper_y])
    return xs, ys


def _outline_depth(g: _Geometry, y) -> np.ndarray:
    """The chin sits forward of the ears, so the lower outline moves a little with yaw."""
    return 0.3 * np.clip(np.asarray(y) / g.chin, 0, 1) ** 2


# --------------------------------------------------------------------------- body, hair behind


def _draw_body(d: ImageDraw.ImageDraw, g: _Geometry, P: _Projector) -> None:
    """Neck, shoulders in the photo's clothes colour, and a neckline."""
    f = g.face
    neck_w = 0.42 * g.a
    ny0, sy = 0.6 * g.chin, g.chin + 0.45
    d.polygon(P([-neck_w, neck_w, neck_w * 1.1, -neck_w * 1.1], [ny0, ny0, sy + 0.6, sy + 0.6]), fill=g.skin_dark)
    t = _lin(0, np.pi, 20)
    d.polygon(P(2.1 * np.cos(t), sy + 0.25 + 1.5 - 1.5 * np.sin(t) ** 0.35), fill=f.clothes_color)
    d.polygon(P([-neck_w * 1.05, 0, neck_w * 1.05], [sy + 0.2, sy + 0.65, sy + 0.2]), fill=g.skin_dark)
    top = g.chin + 0.12  # just below the chin, so that the accessories stay in a face crop
    if f.necktie:  # a white collar and a dark tie
        d.polygon(P([-neck_w * 1.3, 0, neck_w * 1.3, neck_w * 1.1, 0, -neck_w * 1.1],
                    [top, top + 0.3, top, top + 0.45, top + 0.5, top + 0.45]), fill=(245, 245, 240))
        tie = _scale_rgb(f.hat_color, 0.8)
        d.polygon(P([-0.1, 0.1, 0.07, -0.07], [top + 0.22, top + 0.22, top + 0.36, top + 0.36]), fill=tie)
        d.polygon(P([-0.07, 0.07, 0.16, 0.0, -0.16], [top + 0.36, top + 0.36, top + 1.0, top + 1.15, top + 1.0]),
                  fill=tie)
    if f.necklace:  # a string of bright beads across the neck
        u = _lin(-1, 1, 11)
        bx, by = neck_w * 1.05 * u, top + 0.08 + 0.16 * (1 - u**2)
        c = _lin(0, 2 * np.pi, 8)
        d.line(P(bx, by), fill=(150, 130, 60), width=P.width(0.02))
        for x0, y0 in zip(bx, by):
            d.polygon(P(x0 + 0.045 * np.cos(c), y0 + 0.045 * np.sin(c)), fill=f.earring_color,
                      outline=_scale_rgb(f.earring_color, 0.4))


def _hair_outer(g: _Geometry, t: np.ndarray, volume: float, bump: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The outer hair contour at angles t (0 = right, pi/2 = top, pi = left)."""
    r = volume * (1 + bump * np.abs(np.sin(7 * t)))
    return g.a * 1.08 * r * np.cos(t), -0.05 - (g.top * 1.06 * r) * np.sin(t)


def _draw_hair_back(d: ImageDraw.ImageDraw, g: _Geometry, P: _Projector) -> None:
    """Long and curly hair falls behind the neck and shoulders."""
    style, vol = g.face.person.hair_style, g.face.person.hair_volume
    if style.startswith("long"):
        bottom, spread, bump = g.chin + 0.7, 1.3, 0.0
    elif style == "curly":
        bottom, spread, bump = g.chin * 0.75, 1.35, 0.07
    else:
        return
    t = _lin(0, np.pi, 24)
    ox, oy = _hair_outer(g, t, vol * (1.04 if style == "curly" else 1.0), bump)
    side_y = np.array([bottom])
    xs = np.concatenate([[g.a * spread * vol], ox, [-g.a * spread * vol]])
    ys = np.concatenate([side_y, oy, side_y])
    if style == "curly":  # a bumpy bottom edge
        bx = _lin(-g.a * spread * vol, g.a * spread * vol, 9)
        by = bottom + 0.08 * np.cos(np.arange(9) * np.pi)
        xs, ys = np.concatenate([xs, bx]), np.concatenate([ys, by])
    d.polygon(P(xs, ys), fill=g.hair)


def _draw_ears(d: ImageDraw.ImageDraw, g: _Geometry, P: _Projector) -> None:
    es = g.face.person.ear_size
    t = _lin(0, 2 * np.pi, 16)
    for side in (-1, 1):
        cx, cy = side * g.a * 0.98, g.eye_y + 0.14
        d.polygon(P(cx + 0.13 * es * np.cos(t), cy + 0.25 * es * np.sin(t), -0.35), fill=g.skin_dark)
        d.polygon(P(cx + 0.06 * es * np.cos(t) + side * 0.02, cy + 0.14 * es * np.sin(t), -0.35),
                  fill=_scale_rgb(g.skin, 0.7))


# --------------------------------------------------------------------------- the face itself


def _draw_head(d: ImageDraw.ImageDraw, g: _Geometry, P: _Projector) -> np.ndarray:
    xs, ys = _outline(g)
    zs = _outline_depth(g, ys)
    outline = P.points(xs, ys, zs)
    d.polygon(outline.ravel().tolist(), fill=_scale_rgb(g.skin, 0.92))
    # a lighter inset gives the head some volume
    d.polygon(P(xs * 0.93, ys * 0.95 - 0.02, zs + 0.1), fill=g.skin)
    return outline


def _draw_wrinkles(d: ImageDraw.ImageDraw, g: _Geometry, P: _Projector) -> None:
    level = g.face.person.wrinkles
    if level == 0:
        return
    w = P.width(0.035 if level == 2 else 0.03)
    col = _alpha(g.wrinkle, 230 if level == 2 else 190)
    x = _lin(-1, 1, 7)
    for side in (-1, 1):  # nasolabial folds, from the nose wing to past the mouth corner
        t = _lin(0, 1, 6)
        fx = side * (0.17 + (g.mouth_hw + 0.02) * t + 0.03 * np.sin(np.pi * t))
        fy = g.nose_y - 0.04 + (g.mouth_y + 0.1 - g.nose_y) * t
        d.line(P(fx, fy, g.depth(fx, fy)), fill=col, width=w)
    lines = [-0.5] if level == 1 else [-0.44, -0.55, -0.66]
    for ly in lines:  # forehead lines
        fx = 0.38 * g.a * x
        fy = g.eye_y + ly + 0.025 * (x**2)
        d.line(P(fx, fy, g.depth(fx, fy)), fill=col, width=w)
    if level == 2:
        for side in (-1, 1):
            ex = side * (g.eye_x + g.ew + 0.05)
            for k in (-1, 0, 1):  # crow's feet
                fx = np.array([ex, ex + side * 0.12])
                fy = np.array([g.eye_y, g.eye_y + 0.06 * k])
                d.line(P(fx, fy, g.depth(fx, fy)), fill=col, width=w)
            # marionette lines
            fx = np.array([side * g.mouth_hw * 0.95, side * g.mouth_hw * 1.05])
            fy = np.array([g.mouth_y + 0.08, g.mouth_y + 0.3])
            d.line(P(fx, fy, g.depth(fx, fy)), fill=col, width=w)
        rng = np.random.default_rng(g.face.texture_seed)  # a few age spots
        sx, sy = rng.uniform(-0.6, 0.6, 4) * g.a, rng.uniform(-0.6, -0.3, 4) + g.eye_y
        for x0, y0 in zip(sx, sy):
            t = _lin(0, 2 * np.pi, 8)
            d.polygon(P(x0 + 0.035 * np.cos(t), y0 + 0.03 * np.sin(t), g.depth(x0, y0)), fill=_alpha(g.wrinkle, 110))


def _draw_face_cues(d: ImageDraw.ImageDraw, g: _Geometry, P: _Projector) -> None:
    """Identity and image cues on the skin: bags under the eyes, rosy cheeks, high cheekbones,
    chubby cheeks, a double chin and sideburns (see `cues.CUES`)."""
    f, p = g.face, g.face.person
    t = _lin(0, 2 * np.pi, 14)
    x = _lin(-1, 1, 7)
    if p.bags_under_eyes:
        for side in (-1, 1):  # a dark crescent under each eye
            fx = side * g.eye_x + g.ew * 0.85 * x
            top = g.eye_y + g.eh * 0.8 + 0.03 * (1 - x**2)
            bot = top + 0.05 + 0.07 * (1 - x**2)
            d.polygon(P(np.concatenate([fx, fx[::-1]]), np.concatenate([top, bot[::-1]]), g.depth(0.3, g.eye_y)),
                      fill=_alpha(_mix(g.wrinkle, (90, 60, 110), 0.3), 170))
            d.line(P(fx, bot, g.depth(fx, bot)), fill=_alpha(g.wrinkle, 220), width=P.width(0.025))
    if p.high_cheekbones:
        for side in (-1, 1):  # a shadow slanting down under the cheekbone
            fx = side * np.array([0.78, 0.62, 0.42]) * g.a
            fy = g.nose_y + np.array([-0.12, 0.02, 0.12])
            d.line(P(fx, fy, g.depth(fx, fy)), fill=_alpha(_scale_rgb(g.skin, 0.6), 200), width=P.width(0.05))
            hx, hy = side * 0.6 * g.a + 0.12 * np.cos(t), g.nose_y - 0.16 + 0.05 * np.sin(t)
            d.polygon(P(hx, hy, g.depth(hx, hy)), fill=_alpha(g.skin_light, 170))
    if p.chubby:
        for side in (-1, 1):  # full cheeks bulging at the sides
            cx, cy = side * 0.62 * g.a, g.mouth_y - 0.12
            d.polygon(P(cx + 0.26 * np.cos(t), cy + 0.2 * np.sin(t), g.depth(cx, cy)),
                      fill=_alpha(_mix(g.skin, (255, 255, 255), 0.08), 200))
    if f.rosy_cheeks:
        for side in (-1, 1):
            cx, cy = side * 0.5 * g.a, g.nose_y + 0.02
            xs, ys = cx + 0.16 * np.cos(t), cy + 0.12 * np.sin(t)
            d.polygon(P(xs, ys, g.depth(xs, ys)), fill=(225, 45, 55, 120))
    if p.double_chin and f.facial_hair != "beard":
        u = _lin(-1, 1, 9)
        fx = 0.45 * g.a * u
        fy = g.chin + 0.1 + 0.08 * (1 - u**2)
        d.polygon(P(np.concatenate([fx, fx[::-1] * 0.8]), np.concatenate([fy, (fy - 0.12)[::-1]]),
                    _outline_depth(g, np.concatenate([fy, fy[::-1]]))), fill=_scale_rgb(g.skin, 0.95))
        d.line(P(fx, fy, _outline_depth(g, fy)), fill=_alpha(g.wrinkle, 230), width=P.width(0.035))
    if p.sideburns and f.facial_hair != "beard" and p.hair_style != "bald":
        col = g.hair if p.hair_color not in ("blond", "white") else _scale_rgb(g.hair, 0.8)
        for side in (-1, 1):
            ys = _lin(g.eye_y - 0.2, g.eye_y + 0.42, 5)
            hw = g.half_width(ys)
            xs = np.concatenate([hw * 0.99, hw[::-1] * 0.86]) * side
            yy = np.concatenate([ys, ys[::-1]])
            d.polygon(P(xs, yy, _outline_depth(g, yy) + 0.05), fill=col)


def _draw_facial_hair(d: ImageDraw.ImageDraw, g: _Geometry, P: _Projector) -> None:
    kind = g.face.facial_hair
    if kind in ("none", "moustache"):
        return  # the moustache goes over the mouth, in _draw_moustache
    col = g.hair if g.face.person.hair_color not in ("blond", "white") else _scale_rgb(g.hair, 0.85)
    if kind in ("beard", "stubble"):
        y0 = g.nose_y - 0.02
        ry = _lin(max(y0, 0), g.chin, 12)
        rx = g.half_width(ry) * 1.02
        ry = ry + np.where(ry > g.chin * 0.8, 0.06, 0.0)  # the beard hangs below the chin
        top_x = np.array([-0.55 * g.a, -0.3, 0.0, 0.3, 0.55 * g.a])
        top_y = np.array([y0, g.nose_y + 0.1, g.nose_y + 0.13, g.nose_y + 0.1, y0])
        xs = np.concatenate([rx, -rx[::-1], top_x])
        ys = np.concatenate([ry, ry[::-1], top_y])
        zs = np.concatenate([_outline_depth(g, ry), _outline_depth(g, ry[::-1]), g.depth(top_x, top_y)])
        if kind == "beard":
            d.polygon(P(xs, ys, zs), fill=col)
            d.polygon(P(xs * 0.8, g.mouth_y + (ys - g.mouth_y) * 0.75, zs + 0.2), fill=_alpha(g.hair_dark, 90))
        else:
            d.polygon(P(xs, ys, zs), fill=_alpha(g.hair_dark, 85))
            rng = np.random.default_rng(g.face.texture_seed)
            px = rng.uniform(-0.8, 0.8, 260) * g.a
            py = rng.uniform(y0 + 0.05, g.chin, 260)
            keep = np.abs(px) < g.half_width(py) * 0.97
            pts = P.points(px[keep], py[keep], g.depth(px[keep], py[keep]))
            d.point(pts.ravel().tolist(), fill=_alpha(g.hair_dark, 200))
        return
    # goatee: a chin patch joined to the mouth corners
    hw = g.mouth_hw * 0.85
    t = _lin(0, np.pi, 12)
    cx = np.concatenate([[hw, hw * 1.05], 1.4 * hw * np.cos(t), [-hw * 1.05, -hw]])
    cy = np.concatenate([[g.mouth_y - 0.02, g.mouth_y + 0.12], g.chin - 0.1 + 0.16 * np.sin(t),
                         [g.mouth_y + 0.12, g.mouth_y - 0.02]])
    cy = np.minimum(cy, g.chin + 0.06)
    d.polygon(P(cx, cy, g.depth(cx, cy) + 0.15), fill=col)


def _eye_curves(g: _Geometry, side: int, open_scale: float, lower_scale: float, droop: float):
    dx = _lin(-1, 1, 11)
    cx = side * g.eye_x
    xs = cx + dx * g.ew
    upper = g.eye_y - g.eh * open_scale * (1 - dx**2) ** 0.7 + droop * (side * dx) * g.eh
    lower = g.eye_y + g.eh * 0.7 * lower_scale * (1 - dx**2) ** 0.9 + droop * (side * dx) * g.eh * 0.3
    return xs, upper, lower


def _draw_eyes(d: ImageDraw.ImageDraw, g: _Geometry, P: _Projector) -> None:
    f, e = g.face, g.expr
    lash = (30, 22, 22)
    lw = P.width(0.045)
    droop = 0.35 * f.eye_gain if f.emotion == "sad" else 0.0
    for side in (-1, 1):
        xs, upper, lower = _eye_curves(g, side, e["eye_open"], e["eye_lower"], droop)
        zs = g.depth(xs, g.eye_y) + 0.05
        if f.makeup:  # eyeshadow on the upper lid (makeup = eyeshadow, usually with lipstick)
            sx = np.concatenate([xs, xs[::-1]])
            sy = np.concatenate([upper - 0.02, (upper - 0.15 - 0.05 * (1 - _lin(-1, 1, 11) ** 2))[::-1]])
            d.polygon(P(sx, sy, np.concatenate([zs, zs[::-1]])), fill=_alpha(f.eyeshadow_color, 210))
        if not f.eyes_open:
            cy = g.eye_y + g.eh * 0.25 * (1 - _lin(-1, 1, 11) ** 2)
            d.line(P(xs, cy, zs), fill=lash, width=P.width(0.05))
            crease = g.eye_y - g.eh * 0.5 * (1 - _lin(-1, 1, 11) ** 2)
            d.line(P(xs[2:-2], crease[2:-2], zs[2:-2]), fill=_alpha(g.wrinkle, 160), width=lw)
            continue
        d.polygon(P(np.concatenate([xs, xs[::-1]]), np.concatenate([upper, lower[::-1]]),
                    np.concatenate([zs, zs[::-1]])), fill=_SCLERA)
        ix = side * g.eye_x + f.gaze * g.ew * 0.5
        t = _lin(0, 2 * np.pi, 16)
        r = g.iris_r * (0.9 if e["eye_open"] > 1.2 else 1.0)
        iz = g.depth(ix, g.eye_y) + 0.08
        d.polygon(P(ix + r * np.cos(t), g.eye_y + r * np.sin(t), iz), fill=EYE_RGB[f.person.eye_color])
        d.polygon(P(ix + 0.36 * r * np.cos(t), g.eye_y + 0.36 * r * np.sin(t), iz), fill=(12, 10, 12))
        d.polygon(P(ix + 0.3 * r + 0.15 * r * np.cos(t), g.eye_y - 0.3 * r + 0.15 * r * np.sin(t), iz),
                  fill=(255, 255, 255))
        # lids clip the iris: skin above the upper lid and below the lower lid
        upper_lid = _mix(f.eyeshadow_color, g.skin, 0.2) if f.makeup else g.skin
        band = g.iris_r * 1.3
        d.polygon(P(np.concatenate([xs, xs[::-1]]), np.concatenate([upper, upper[::-1] - band]),
                    np.concatenate([zs, zs[::-1]])), fill=upper_lid)
        d.polygon(P(np.concatenate([xs, xs[::-1]]), np.concatenate([lower, lower[::-1] + band]),
                    np.concatenate([zs, zs[::-1]])), fill=g.skin)
        d.line(P(xs, upper, zs), fill=lash, width=P.width(0.055 if f.makeup else 0.045))
        d.line(P(xs[2:-1], lower[2:-1], zs[2:-1]), fill=_alpha(g.wrinkle, 200), width=max(1, lw // 2))


def _draw_brows(d: ImageDraw.ImageDraw, g: _Geometry, P: _Projector) -> None:
    f, e, p = g.face, g.expr, g.face.person
    if p.hair_color in ("grey", "white"):
        col = _scale_rgb(g.hair, 0.7)
    elif p.hair_color == "blond":
        col = _scale_rgb(g.hair, 0.62)
    else:
        col = _scale_rgb(g.hair, 0.85)
    t = _lin(0, 1, 9)
    bushy = 1.45 if p.brow_thickness > BUSHY_BROWS else 1.0
    th = 0.075 * p.brow_thickness * bushy * g.age["brow"] * (1 - 0.55 * t)
    base = g.eye_y - 0.28 * g.age["eye_scale"] - e["brow_raise"]
    for side in (-1, 1):
        x_in = side * (g.eye_x - g.ew * 0.95 - e["brow_pinch"])
        x_out = side * (g.eye_x + g.ew * 1.1)
        xs = x_in + (x_out - x_in) * t
        ys = base - e["brow_inner"] * (1 - t) ** 1.5 - _BROW_ARCH[p.brow_shape](t)
        if f.emotion == "surprised":
            ys = ys - 0.05 * f.brow_gain * np.sin(np.pi * t)
        zs = g.depth(xs, ys) + 0.05
        d.polygon(P(np.concatenate([xs, xs[::-1]]), np.concatenate([ys - th / 2, (ys + th / 2)[::-1]]),
                    np.concatenate([zs, zs[::-1]])), fill=col)


def _draw_nose(d: ImageDraw.ImageDraw, g: _Geometry, P: _Projector) -> None:
    p = g.face.person
    nw, tip, bump = _NOSES[p.nose_shape]
    nw *= g.age["nose"]
    ny = g.nose_y
    shade = _alpha(g.wrinkle, 150)
    side = 1 if g.face.yaw < 0 else -1  # the shaded side faces away from the camera
    t = _lin(0, 1, 6)
    bx = side * (0.06 + 0.04 * t) * nw + side * bump * np.sin(np.pi * t)
    by = g.eye_y + 0.06 + (ny - 0.08 - g.eye_y - 0.06) * t
    bz = g.depth(0, by) + 0.3 * t
    d.line(P(bx, by, bz), fill=shade, width=P.width(0.035))
    tz = g.depth(0, ny) + 0.32
    c = _lin(0, 2 * np.pi, 12)
    # wings, tip, nostrils
    for s in (-1, 1):
        wx = s * 0.14 * nw + 0.05 * np.cos(c[3:10]) * s
        wy = ny + 0.05 * np.sin(c[3:10])
        d.line(P(wx, wy, tz - 0.15), fill=shade, width=P.width(0.03))
        d.polygon(P(s * 0.075 * nw + 0.045 * nw * np.cos(c), ny + 0.045 + 0.022 * np.sin(c), tz - 0.1),
                  fill=_scale_rgb(g.skin, 0.45))
    d.polygon(P(tip * np.cos(c), ny - 0.03 + tip * 0.8 * np.sin(c), tz), fill=_alpha(g.skin_light, 150))
    if g.face.emotion == "disgusted" and g.face.wrinkled_nose:  # wrinkled nose bridge
        for k in (0, 1):
            wx = np.array([-0.08, 0.0, 0.08])
            wy = g.eye_y + 0.12 + 0.06 * k + np.array([0.02, -0.01, 0.02])
            d.line(P(wx, wy, g.depth(0, wy[1]) + 0.15), fill=_alpha(g.wrinkle, 220), width=P.width(0.025))


def _draw_mouth(d: ImageDraw.ImageDraw, g: _Geometry, P: _Projector) -> None:
    f, e = g.face, g.expr
    hw, my = g.mouth_hw, g.mouth_y
    u = _lin(-1, 1, 13)
    xs = u * hw
    line = my - e["mouth_curve"] * u**2 + e["mouth_curve"] * 0.15 - e["asym"] * np.clip(u, 0, 1) ** 1.5
    env = np.sqrt(np.clip(1 - u**2, 0, 1))
    gap = e["mouth_open"] * env
    top = line - gap * e["open_up"]
    bot = line + gap * (1 - e["open_up"])
    lip = 0.065 * f.person.lip_thickness * g.age["lip"] * e["lip"]
    lipstick = f.makeup and f.lipstick
    col = f.lipstick_color if lipstick else g.lips
    if lipstick:
        lip *= 1.25
    zs = g.depth(xs, my) + 0.12
    z2 = np.concatenate([zs, zs[::-1]])
    bow = 0.35 * lip * np.cos(u * np.pi * 1.5) ** 2 * env  # cupid's bow
    upper_lip_top = top - lip * env**0.5 - bow * 0.5
    lower_lip_bot = bot + 1.3 * lip * env**0.5
    d.polygon(P(np.concatenate([xs, xs[::-1]]), np.concatenate([upper_lip_top, lower_lip_bot[::-1]]), z2), fill=col)
    if e["mouth_open"] > 0:
        d.polygon(P(np.concatenate([xs, xs[::-1]]), np.concatenate([top, bot[::-1]]), z2), fill=_MOUTH_INSIDE)
        tooth = np.minimum(gap, 0.07)
        if "upper" in e["teeth"] or e["teeth"] == "both":
            keep = slice(1, -1) if e["teeth"] == "upper" else slice(None)
            tx = xs[keep] * 0.92
            d.polygon(P(np.concatenate([tx, tx[::-1]]), np.concatenate([top[keep], (top + tooth)[keep][::-1]]),
                        np.concatenate([zs[keep], zs[keep][::-1]])), fill=_TEETH)
        if e["teeth"] == "both":
            tx = xs * 0.9
            d.polygon(P(np.concatenate([tx, tx[::-1]]), np.concatenate([bot - tooth, bot[::-1]]), z2), fill=_TEETH)
    d.line(P(xs, line if e["mouth_open"] == 0 else top, zs), fill=_scale_rgb(col, 0.55), width=P.width(0.025))


def _draw_moustache(d: ImageDraw.ImageDraw, g: _Geometry, P: _Projector) -> None:
    if g.face.facial_hair not in ("moustache", "goatee", "beard"):
        return
    col = g.hair if g.face.person.hair_color not in ("blond", "white") else _scale_rgb(g.hair, 0.85)
    if g.face.facial_hair == "beard":
        col = _scale_rgb(col, 0.9)
    hw = max(g.mouth_hw, 0.22) * 1.12
    u = _lin(-1, 1, 11)
    top = g.nose_y + 0.09 + 0.02 * u**2
    base = g.mouth_y - 0.06 - g.expr["mouth_open"] * g.expr["open_up"] - 0.02
    bottom = base + 0.05 * u**2 + 0.03 * (1 - u**2)
    xs = u * hw
    zs = g.depth(xs, top) + 0.2
    d.polygon(P(np.concatenate([xs, xs[::-1] * 1.06]), np.concatenate([top, bottom[::-1]]),
                np.concatenate([zs, zs[::-1]])), fill=col)


# --------------------------------------------------------------------------- hair in front, accessories


def _hairline(g: _Geometry, n: int = 15) -> tuple[np.ndarray, np.ndarray]:
    """The hairline across the forehead, right temple to left temple."""
    p = g.face.person
    t = _lin(0, np.pi, n)
    side_y = g.eye_y - 0.18
    line_y = g.eye_y + g.age["hairline"]
    xs = g.a * 0.97 * np.cos(t)
    ys = side_y + (line_y - side_y) * np.sin(t) ** 0.55 + 0.09 * p.hair_part * np.sin(2 * t)
    if p.receding_hairline:  # drawn back at the temples: an M-shaped hairline
        ys = ys - 0.32 * np.exp(-(((t - 0.6) / 0.3) ** 2) - 0.0) - 0.32 * np.exp(-(((t - np.pi + 0.6) / 0.3) ** 2))
    return xs, ys


def _draw_hair_front(d: ImageDraw.ImageDraw, g: _Geometry, P: _Projector) -> None:
    p = g.face.person
    style, vol = p.hair_style, p.hair_volume
    if style == "bald":
        for side in (-1, 1):  # a fringe of hair round the back, above the ears
            ys = _lin(g.eye_y - 0.5, g.eye_y + 0.25, 8)
            hw = g.half_width(ys)
            xs = np.concatenate([hw * 1.07, hw[::-1] * 0.9]) * side
            yy = np.concatenate([ys, ys[::-1]])
            d.polygon(P(xs, yy, np.zeros_like(yy)), fill=g.hair)
        _draw_greying(d, g, P)
        t = _lin(0, 2 * np.pi, 12)
        hx, hy = -0.25 + 0.28 * np.cos(t), -1.0 + 0.12 * np.sin(t)
        d.polygon(P(hx, hy, g.depth(hx, hy)), fill=(255, 255, 255, 70))
        return
    curly = style == "curly"
    t = _lin(0, np.pi, 25)
    ox, oy = _hair_outer(g, t, vol * (1.12 if curly else 1.0), 0.07 if curly else 0.0)
    ix, iy = _hairline(g)
    if curly:
        iy = iy + 0.04 * np.abs(np.sin(_lin(0, 7 * np.pi, len(iy))))
    xs = np.concatenate([ox, ix[::-1]])
    ys = np.concatenate([oy, iy[::-1]])
    zs = np.concatenate([np.zeros_like(ox), g.depth(ix[::-1], iy[::-1]) + 0.05])
    d.polygon(P(xs, ys, zs), fill=g.hair)
    if style.endswith("with bangs"):
        bx = _lin(-0.85, 0.85, 13) * g.a
        by = g.eye_y - 0.36 + 0.06 * (np.arange(13) % 2) + 0.05 * (bx / g.a) ** 2
        fx = np.concatenate([ix, bx[::-1]])
        fy = np.concatenate([iy - 0.02, by[::-1]])
        d.polygon(P(fx, fy, g.depth(fx, fy) + 0.08), fill=g.hair)
        d.line(P(bx, by, g.depth(bx, by) + 0.08), fill=g.hair_dark, width=P.width(0.02))
    if style.startswith("long") or curly:  # locks falling beside the cheeks, over the ears
        end = g.chin + 0.55 if not curly else g.chin * 0.75
        ys = _lin(g.eye_y - 0.3, end, 9)
        w_in = np.minimum(g.half_width(ys), g.a) * 0.94
        w_out = g.a * (1.1 + (0.22 if curly else 0.12) * _lin(0, 1, 9)) * vol
        for side in (-1, 1):
            lx = side * np.concatenate([w_in, w_out[::-1]])
            ly = np.concatenate([ys, ys[::-1]])
            d.polygon(P(lx, ly, np.zeros_like(ly)), fill=g.hair)
    _draw_greying(d, g, P)
    # strands or curls give the hair texture
    rng = np.random.default_rng(g.face.texture_seed + 1)
    if curly:
        for _ in range(22):
            tt = rng.uniform(0.05, np.pi - 0.05)
            rr = rng.uniform(0.82, 1.05)
            cx, cy = _hair_outer(g, np.array([tt]), vol * 1.05 * rr)
            c = _lin(0, 1.6 * np.pi, 8) + rng.uniform(0, 6)
            d.line(P(cx + 0.09 * np.cos(c), cy + 0.09 * np.sin(c)), fill=g.hair_dark, width=P.width(0.025))
    else:
        for k in range(6):
            tt = _lin(0.25 + 0.45 * k, 0.25 + 0.45 * k + 0.5, 5) % np.pi
            sx, sy = _hair_outer(g, tt, vol * 0.93)
            d.line(P(sx, sy), fill=g.hair_dark, width=P.width(0.02))


def _draw_greying(d: ImageDraw.ImageDraw, g: _Geometry, P: _Projector) -> None:
    """Grey temples (a person's `greying` cue; hair colour is the rest of the hair)."""
    p = g.face.person
    amount = (0.75 if p.age_group == "senior" else 0.55) if p.greying else 0.0
    if not amount or p.hair_color in ("grey", "white"):
        return
    col = _mix(g.hair, (210, 210, 212), amount)
    t = _lin(0, 2 * np.pi, 12)
    for side in (-1, 1):
        cx, cy = side * g.a * 1.0, g.eye_y - 0.33
        d.polygon(P(cx + 0.12 * np.cos(t), cy + (0.17 + 0.08 * amount) * np.sin(t)), fill=col)


def _draw_earrings(d: ImageDraw.ImageDraw, g: _Geometry, P: _Projector) -> None:
    """Large, bright, dark-rimmed earrings below the lobes (over any hair); the far one is hidden at
    strong yaw. The rim keeps them visible on any background."""
    f = g.face
    c = _lin(0, 2 * np.pi, 14)
    rim = _scale_rgb(f.earring_color, 0.35)
    for side in (-1, 1):
        if side * f.yaw > 22:  # the far ear is hidden behind the cheek
            continue
        ex, ey = side * g.a * 1.02, g.eye_y + 0.36 * f.person.ear_size
        if f.earring_style == "hoop":
            ring = P(ex + 0.17 * np.cos(c), ey + 0.19 + 0.19 * np.sin(c), -0.3)
            d.line(ring, fill=rim, width=P.width(0.11))
            d.line(ring, fill=f.earring_color, width=P.width(0.06))
        elif f.earring_style == "stud":
            d.polygon(P(ex + 0.12 * np.cos(c), ey + 0.06 + 0.12 * np.sin(c), -0.3), fill=f.earring_color,
                      outline=rim, width=P.width(0.03))
        else:
            d.line(P([ex, ex], [ey, ey + 0.16], -0.3), fill=rim, width=P.width(0.05))
            d.polygon(P(ex + 0.12 * np.cos(c), ey + 0.27 + 0.14 * np.sin(c), -0.3), fill=f.earring_color,
                      outline=rim, width=P.width(0.03))


def _draw_eyewear(d: ImageDraw.ImageDraw, g: _Geometry, P: _Projector) -> None:
    f = g.face
    if f.eyewear == "none":
        return
    sun = f.eyewear == "sunglasses"
    rx, ry = g.ew * 1.45, g.eh * (2.2 if sun else 2.0)
    c = _lin(0, 2 * np.pi, 20)
    lens_x = np.sign(np.cos(c)) * np.abs(np.cos(c)) ** 0.6  # rounded rectangles
    lens_y = np.sign(np.sin(c)) * np.abs(np.sin(c)) ** 0.7
    width = P.width(0.05 if sun else 0.04)
    frame = f.frame_color
    inner = []
    for side in (-1, 1):
        cx, cy = side * g.eye_x, g.eye_y + 0.02
        xs, ys = cx + rx * lens_x, cy + ry * lens_y
        zs = g.depth(xs, ys) + 0.2
        pts = P(xs, ys, zs)
        if sun:
            d.polygon(pts, fill=f.lens_color)
            hx = cx + rx * np.array([-0.5, -0.1, -0.3])
            hy = cy + ry * np.array([-0.5, -0.55, 0.2])
            d.polygon(P(hx, hy, g.depth(hx, hy) + 0.2), fill=(255, 255, 255, 70))
        else:
            d.polygon(pts, fill=(225, 235, 245, 40))
        d.line(pts + pts[:2], fill=frame, width=width)
        inner.append(cx - side * rx)
        temple_x = np.array([cx + side * rx, side * g.a * 1.0])
        temple_y = np.array([cy - ry * 0.4, g.eye_y + 0.02])
        d.line(P(temple_x, temple_y, [g.depth(cx + side * rx, cy) + 0.2, -0.2]), fill=frame, width=width)
    bx = np.array([inner[0], 0, inner[1]])
    by = g.eye_y + np.array([-0.02, -0.06, -0.02])
    d.line(P(bx, by, g.depth(bx, by) + 0.3), fill=frame, width=width)


def _draw_hat(d: ImageDraw.ImageDraw, g: _Geometry, P: _Projector) -> None:
    f = g.face
    if not f.hat:
        return
    col, dark = f.hat_color, _scale_rgb(f.hat_color, 0.72)
    vol = max(f.person.hair_volume, 1.0) * (1.12 if f.person.hair_style == "curly" else 1.04)
    edge_y = g.eye_y - 0.58
    if f.hat_style == "brimmed":
        c = _lin(0, 2 * np.pi, 24)
        d.polygon(P(1.75 * g.a * np.cos(c), edge_y - 0.15 + 0.3 * np.sin(c), 0.1), fill=dark)
        t = _lin(0, np.pi, 14)
        cx = 0.85 * g.a * np.sign(np.cos(t)) * np.abs(np.cos(t)) ** 0.4
        cy = edge_y - 0.2 - (g.top * 1.15) * np.sin(t) ** 0.4
        d.polygon(P(np.concatenate([[0.85 * g.a], cx, [-0.85 * g.a]]),
                    np.concatenate([[edge_y - 0.1], cy, [edge_y - 0.1]])), fill=col)
        d.polygon(P([0.85 * g.a, -0.85 * g.a, -0.85 * g.a, 0.85 * g.a],
                    [edge_y - 0.1, edge_y - 0.1, edge_y - 0.32, edge_y - 0.32]), fill=dark)
        return
    t = _lin(0, np.pi, 22)
    ox, oy = _hair_outer(g, t, vol * 1.06)
    oy = oy - 0.06
    bx = _lin(-1, 1, 9) * g.a * 1.1 * vol
    by = edge_y + 0.04 * (1 - (bx / (g.a * vol)) ** 2)
    xs, ys = np.concatenate([ox, bx]), np.concatenate([oy, by])
    zs = np.concatenate([np.zeros_like(ox), g.depth(bx, by) * 0.9])
    d.polygon(P(xs, ys, zs), fill=col)
    if f.hat_style == "beanie":  # a folded band
        band_top = by - 0.24
        d.polygon(P(np.concatenate([bx, bx[::-1]]), np.concatenate([by, band_top[::-1]]),
                    np.concatenate([zs[-9:], zs[-9:][::-1]])), fill=dark)
        for k in range(-3, 4):
            rx = np.array([k * 0.22, k * 0.26]) * g.a
            ry = np.array([edge_y - 0.3, -g.top * 0.95])
            d.line(P(rx, ry, g.depth(rx, ry) * 0.9), fill=dark, width=P.width(0.025))
    else:  # a cap: a brim sticking out over the forehead
        c = _lin(0, np.pi, 12)
        brim_x = 0.95 * g.a * np.cos(c)
        brim_y = edge_y + 0.02 + 0.3 * np.sin(c)
        d.polygon(P(brim_x, brim_y, g.depth(brim_x, edge_y) + 0.55), fill=dark)
        d.polygon(P(0.08 * np.cos(c * 2), -g.top * 1.08 + 0.06 * np.sin(c * 2) - 0.04), fill=dark)


def _face_box(g: _Geometry, P: _Projector) -> tuple[float, float, float, float]:
    """The detection box: from just above the brows to the chin, cheek to cheek."""
    ys = _lin(g.eye_y - 0.5, g.chin, 12)
    hw = g.half_width(ys)
    pts = np.concatenate([P.points(hw, ys, _outline_depth(g, ys)), P.points(-hw, ys, _outline_depth(g, ys))])
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    return float(x0), float(y0), float(x1), float(y1)


def draw_face(image: Image.Image, face: Face, center: tuple[float, float], scale: float,
              body: bool = True) -> FaceLayout:
    """Draw `face` onto `image` (RGB, in place) with its head centre at `center`, `scale` pixels per
    face unit (the head is about 2.7 units tall). Returns where it landed, in `image`'s pixels."""
    g = _geometry(face)
    P = _Projector(center[0], center[1], scale * g.age["head"], face.yaw, face.roll)
    d = ImageDraw.Draw(image, "RGBA")
    _draw_hair_back(d, g, P)
    if body:
        _draw_body(d, g, P)
    _draw_ears(d, g, P)
    outline = _draw_head(d, g, P)
    _draw_wrinkles(d, g, P)
    _draw_face_cues(d, g, P)
    _draw_facial_hair(d, g, P)
    _draw_eyes(d, g, P)
    _draw_brows(d, g, P)
    _draw_nose(d, g, P)
    _draw_mouth(d, g, P)
    _draw_moustache(d, g, P)
    _draw_hair_front(d, g, P)
    if face.earrings:
        _draw_earrings(d, g, P)
    _draw_eyewear(d, g, P)
    _draw_hat(d, g, P)
    eyes = P.points(np.array([-g.eye_x, g.eye_x]), np.array([g.eye_y, g.eye_y]), g.depth(g.eye_x, g.eye_y))
    mouth = P.points(0.0, g.mouth_y, g.depth(0, g.mouth_y))[0]
    return FaceLayout(_face_box(g, P), outline, eyes, mouth, P.s)


# --------------------------------------------------------------------------- nuisances


#: background kinds a portrait can have
BACKGROUNDS = ("plain", "gradient", "clutter", "indoor")


@dataclass(frozen=True)
class Nuisance:
    """Everything about a photo that carries no label. `Nuisance()` is a clean, centred studio shot."""

    scale: float = 1.0  # head size relative to the default framing
    dx: float = 0.0  # head offset, fraction of the image size
    dy: float = 0.0
    background: str = "plain"
    bg_colors: tuple[RGB, RGB] = ((205, 205, 210), (150, 155, 165))
    light_angle: float = 0.0  # direction of the lighting gradient, radians
    light_strength: float = 0.0  # 0 = flat; 0.3 = one side 60 % brighter than the other
    brightness: float = 1.0
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    blur: float = 0.0  # Gaussian radius as a fraction of the image side (0.01 = 1.1 px at 112 px)
    noise: float = 0.0  # Gaussian noise sigma in 0..255 units
    jpeg_quality: int | None = None  # None = no JPEG round trip
    seed: int = 0  # seeds clutter and noise


def sample_nuisance(rng: np.random.Generator, strength: float = 1.0) -> Nuisance:
    """Random nuisances; `strength` in [0, 1] scales how far they stray from a clean studio shot."""
    s = float(strength)
    c1 = tuple(int(v) for v in rng.integers(30, 240, 3))
    c2 = tuple(int(v) for v in rng.integers(30, 240, 3))
    return Nuisance(
        scale=float(1 + s * rng.uniform(-0.18, 0.1)),
        dx=float(s * rng.uniform(-0.07, 0.07)),
        dy=float(s * rng.uniform(-0.05, 0.05)),
        background=BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))] if s > 0 else "plain",
        bg_colors=(c1, c2),
        light_angle=float(rng.uniform(0, 2 * np.pi)),
        light_strength=float(s * rng.uniform(0, 0.3)),
        brightness=float(1 + s * rng.uniform(-0.18, 0.12)),
        tint=tuple(float(v) for v in 1 + s * rng.uniform(-0.06, 0.06, 3)),
        blur=float(s * rng.uniform(0.003, 0.01)) if rng.random() < 0.35 else 0.0,
        noise=float(s * rng.uniform(1, 7)) if rng.random() < 0.5 else 0.0,
        jpeg_quality=int(rng.integers(35, 92)) if rng.random() < 0.4 * s else None,
        seed=int(rng.integers(2**31)),
    )


@lru_cache(maxsize=16)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    r = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
    return r[None, :], r[:, None]


def draw_background(size: int, nuisance: Nuisance) -> Image.Image:
    """A `size` x `size` RGB background of the nuisance's kind."""
    c1, c2 = nuisance.bg_colors
    if nuisance.background == "plain":
        return Image.new("RGB", (size, size), c1)
    gx, gy = _grid(16)  # a smooth ramp: computed small, resized (much faster than at full size)
    ramp = np.clip(0.5 + gy * np.cos(nuisance.light_angle) + gx * np.sin(nuisance.light_angle), 0, 1)
    arr = np.asarray(c1, np.float32) + ramp[..., None] * (np.asarray(c2, np.float32) - np.asarray(c1, np.float32))
    img = Image.fromarray(arr.astype(np.uint8), "RGB").resize((size, size), Image.BILINEAR)
    if nuisance.background == "gradient":
        return img
    rng = np.random.default_rng(nuisance.seed)
    d = ImageDraw.Draw(img)
    if nuisance.background == "indoor":  # a wall, a floor line, a window or a picture frame
        horizon = int(size * rng.uniform(0.6, 0.85))
        d.rectangle([0, horizon, size, size], fill=tuple(int(v) for v in rng.integers(40, 160, 3)))
        for _ in range(int(rng.integers(1, 3))):
            x0, y0 = rng.uniform(0, 0.8, 2) * size
            w, h = rng.uniform(0.15, 0.4, 2) * size
            d.rectangle([x0, y0, x0 + w, y0 + h], fill=tuple(int(v) for v in rng.integers(60, 250, 3)),
                        outline=tuple(int(v) for v in rng.integers(0, 120, 3)), width=max(1, size // 60))
        return img
    for _ in range(int(rng.integers(4, 11))):  # clutter: random shapes and lines
        x0, y0 = rng.uniform(-0.1, 1.0, 2) * size
        w, h = rng.uniform(0.05, 0.4, 2) * size
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        kind = rng.integers(3)
        if kind == 0:
            d.rectangle([x0, y0, x0 + w, y0 + h], fill=colour)
        elif kind == 1:
            d.ellipse([x0, y0, x0 + w, y0 + h], fill=colour)
        else:
            d.line([x0, y0, x0 + w, y0 + h], fill=colour, width=max(1, size // 40))
    return img


def apply_nuisance(image: Image.Image, nuisance: Nuisance) -> Image.Image:
    """Lighting gradient, colour tint, blur, sensor noise and JPEG compression, in camera order."""
    n = nuisance
    if n.light_strength or n.brightness != 1.0 or n.tint != (1.0, 1.0, 1.0):
        w, h = image.size
        gx, gy = _grid(w)[0], _grid(h)[1]
        light = n.brightness * (1 + 2 * n.light_strength * (gx * np.cos(n.light_angle) + gy * np.sin(n.light_angle)))
        arr = np.asarray(image, dtype=np.float32)
        arr *= light[..., None] * np.asarray(n.tint, np.float32)
        np.clip(arr, 0, 255, out=arr)
        image = Image.fromarray(arr.astype(np.uint8), "RGB")
    if n.blur:
        image = image.filter(ImageFilter.GaussianBlur(n.blur * max(image.size)))
    if n.noise:
        arr = np.asarray(image, dtype=np.float32)
        arr += n.noise * np.random.default_rng(n.seed + 7).standard_normal(arr.shape, dtype=np.float32)
        np.clip(arr + 0.5, 0, 255, out=arr)
        image = Image.fromarray(arr.astype(np.uint8), "RGB")
    if n.jpeg_quality is not None:
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=int(n.jpeg_quality))
        buf.seek(0)
        image = Image.open(buf)
        image.load()
        image = image.convert("RGB")
    return image


def render_face(face: Face, size: int = 112, nuisance: Nuisance | None = None,
                supersample: int = 2) -> tuple[Image.Image, FaceLayout]:
    """A `size` x `size` portrait of `face` under `nuisance` (default: clean studio shot).

    Returns the RGB image and where the face landed (output pixels).
    """
    if not 16 <= int(size) <= 1024:
        raise ValueError(f"size={size}: expected an image size between 16 and 1024 pixels (64-224 is typical)")
    n = nuisance or Nuisance()
    big = int(size) * int(supersample)
    image = draw_background(big, n)
    center = (big * (0.5 + n.dx), big * (0.47 + n.dy))
    layout = draw_face(image, face, center, big * 0.31 * n.scale)
    if supersample > 1:
        image = image.reduce(int(supersample))
        layout = layout.scaled(1 / supersample)
    return apply_nuisance(image, n), layout
