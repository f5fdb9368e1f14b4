"""CelebA (Liu et al., 2015): 202,599 aligned faces with 40 binary attributes.

Layout, as published (the files may also sit in the archive's ``Anno/``, ``Eval/`` and ``Img/``
folders, which are searched too)::

    root/list_attr_celeba.txt       line 1: the number of images; line 2: the 40 attribute names;
                                    then "000001.jpg -1  1  1 -1 ..." (1 = has it, -1 = has not)
    root/img_align_celeba/000001.jpg
    root/list_eval_partition.txt    optional: "000001.jpg 0" (0 train, 1 val, 2 test)
    root/identity_CelebA.txt        optional: "000001.jpg 2880" (the person's id)

Every one of the 40 attributes goes into ``record.extra`` under its CelebA name as a bool
(``extra["Smiling"] is True``), so a 40-attribute linear probe reads them as they are. Where a
CelebA attribute means one of flip's, the record's field is set too:

==============  ===============================================================================
flip field      from CelebA
==============  ===============================================================================
eyewear         Eyeglasses: 1 -> "eyeglasses" (CelebA does not tell sunglasses apart), -1 -> "none"
hat             Wearing_Hat
earrings        Wearing_Earrings
makeup          Heavy_Makeup or Wearing_Lipstick -> True; neither -> False
emotion         Smiling: 1 -> "happy"; -1 -> None (not smiling is not necessarily neutral)
hair_color      the one of Black_Hair / Brown_Hair / Blond_Hair / Gray_Hair (-> "grey") marked;
                None when none or several are
hair_style      Bald: 1 -> "bald"; otherwise None (CelebA has no hair length)
facial_hair     Goatee -> "goatee", else No_Beard -1 -> "beard", else Mustache -> "moustache",
                else 5_o_Clock_Shadow -> "stubble", else "none"
age_group       Young: 1 -> "young adult"; -1 -> None (could be middle-aged or senior)
skin_tone       Pale_Skin: 1 -> "pale"; -1 -> None
face_shape      Oval_Face: 1 -> "oval"; -1 -> None
identity        identity_CelebA.txt, when present
==============  ===============================================================================
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from flip.data.formats import DataError, ErrorPolicy
from flip.data.loaders._common import register_loader, resolve_image
from flip.data.records import FaceRecord

ATTRIBUTE_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
IDENTITY_FILE = "identity_CelebA.txt"
IMAGE_FOLDER = "img_align_celeba"
#: the 40 attributes, in the file's order
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips",
    "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin",
    "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open",
    "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline",
    "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat",
    "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
)
#: split name -> the partition file's code
SPLITS = {"train": "0", "val": "1", "valid": "1", "validation": "1", "test": "2"}
_HAIR_COLORS = {"Black_Hair": "black", "Brown_Hair": "brown", "Blond_Hair": "blond", "Gray_Hair": "grey"}


def _find(root: Path, name: str, *folders: str) -> Path | None:
    for folder in ("", *folders):
        path = root / folder / name
        if path.exists():
            return path
    return None


def _detect(path: Path) -> bool:
    return path.is_dir() and _find(path, ATTRIBUTE_FILE, "Anno") is not None


def flip_labels(attrs: dict[str, bool]) -> dict:
    """flip's attribute fields from CelebA's 40 booleans (the mapping in the module docstring)."""
    get = attrs.get
    hair = [color for name, color in _HAIR_COLORS.items() if get(name)]
    if get("Goatee"):
        facial_hair = "goatee"
    elif get("No_Beard") is False:
        facial_hair = "beard"
    elif get("Mustache"):
        facial_hair = "moustache"
    elif get("5_o_Clock_Shadow"):
        facial_hair = "stubble"
    else:
        facial_hair = "none" if "No_Beard" in attrs else None
    has = lambda name, yes, no=None: None if name not in attrs else (yes if attrs[name] else no)  # noqa: E731
    return {
        "eyewear": has("Eyeglasses", "eyeglasses", "none"),
        "hat": get("Wearing_Hat"),
        "earrings": get("Wearing_Earrings"),
        "makeup": (bool(get("Heavy_Makeup") or get("Wearing_Lipstick"))
                   if "Heavy_Makeup" in attrs or "Wearing_Lipstick" in attrs else None),
        "emotion": has("Smiling", "happy"),
        "hair_color": hair[0] if len(hair) == 1 else None,
        "hair_style": has("Bald", "bald"),
        "facial_hair": facial_hair,
        "age_group": has("Young", "young adult"),
        "skin_tone": has("Pale_Skin", "pale"),
        "face_shape": has("Oval_Face", "oval"),
    }


def _read_pairs_file(path: Path, policy: ErrorPolicy) -> dict[str, str]:
    """{image file name: value} from a two-column "name value" file (partition, identity)."""
    out = {}
    with open(path, encoding="utf-8") as lines:
        for line_no, line in enumerate(lines, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2:
                policy.handle(DataError(f"expected 'file value', got {line.strip()!r}", path, f"line {line_no}"))
                continue
            out[parts[0]] = parts[1]
    return out


@register_loader("celeba", _detect, "CelebA: list_attr_celeba.txt + img_align_celeba/ (40 binary attributes)")
def read_celeba(root: Path, split: str | None, policy: ErrorPolicy, check_images: bool,
                image_root: str | Path | None = None) -> Iterator[FaceRecord]:
    """CelebA's records; `split` train/val/test needs list_eval_partition.txt. `image_root`
    overrides where the images are (default: the first of root/img_align_celeba, root/Img/img_align_celeba)."""
    attr_file = _find(root, ATTRIBUTE_FILE, "Anno")
    if attr_file is None:
        raise FileNotFoundError(f"{root}: no {ATTRIBUTE_FILE} (looked in {root} and {root / 'Anno'})")
    images = Path(image_root) if image_root else (_find(root, IMAGE_FOLDER, "Img") or root / IMAGE_FOLDER)
    wanted = None
    if split is not None:
        if split not in SPLITS:
            raise ValueError(f"CelebA split must be one of {sorted(SPLITS)}, got {split!r}")
        partition_file = _find(root, PARTITION_FILE, "Eval", "Anno")
        if partition_file is None:
            raise FileNotFoundError(f"{root}: split={split!r} needs {PARTITION_FILE} (looked in {root}, Eval/, Anno/)")
        wanted = {name for name, code in _read_pairs_file(partition_file, policy).items() if code == SPLITS[split]}
    identity_file = _find(root, IDENTITY_FILE, "Anno")
    identities = _read_pairs_file(identity_file, policy) if identity_file else {}

    with open(attr_file, encoding="utf-8") as lines:
        first = lines.readline().strip()
        names = lines.readline().split()
        if not first.isdigit() or not names:
            policy.handle(DataError("expected the image count on line 1 and the attribute names on line 2",
                                    attr_file, "line 1"))
            return
        count, seen = int(first), 0
        for line_no, line in enumerate(lines, start=3):
            parts = line.split()
            if not parts:
                continue
            seen += 1
            file_name, values = parts[0], parts[1:]
            where = f"line {line_no}"
            if wanted is not None and file_name not in wanted:
                continue
            try:
                if len(values) != len(names):
                    raise ValueError(f"{file_name}: expected {len(names)} attribute values, got {len(values)}")
                bad = [(n, v) for n, v in zip(names, values) if v not in ("1", "-1")]
                if bad:
                    raise ValueError(f"{file_name}: attribute {bad[0][0]} must be 1 or -1, got {bad[0][1]!r}")
                image = resolve_image(images, file_name, check_images)
            except (ValueError, OSError) as e:
                policy.handle(DataError(str(e), attr_file, where))
                continue
            attrs = {n: v == "1" for n, v in zip(names, values)}
            yield FaceRecord(file_name=file_name, image=image, identity=identities.get(file_name),
                             extra=dict(attrs), **flip_labels(attrs))
        if seen != count:
            policy.handle(DataError(f"line 1 says {count} images but the file lists {seen}", attr_file, "line 1"))
