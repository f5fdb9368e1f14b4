"""The synthetic face world: procedurally drawn, labelled faces for training and measuring flip
end to end where no real face data can be had.

- `attributes`: the attribute vocabularies, their couplings and the `AttributeSampler`.
- `faces`: `Identity` (a named person and their stable looks) and `Face` (one photo of them).
- `render`: drawing a `Face` under nuisances (pose, lighting, background, blur, noise, JPEG).
- `captions`: FaceCaption-15M-style captions from the labels.
"""

from flip.data.synthetic.attributes import AttributeSampler, VOCABULARIES
from flip.data.synthetic.captions import Caption, build_caption
from flip.data.synthetic.faces import Face, Identity, make_identities, sample_face
from flip.data.synthetic.render import Nuisance, draw_face, render_face, sample_nuisance

__all__ = [
    "AttributeSampler",
    "Caption",
    "Face",
    "Identity",
    "Nuisance",
    "VOCABULARIES",
    "build_caption",
    "draw_face",
    "make_identities",
    "render_face",
    "sample_face",
    "sample_nuisance",
]
