"""The synthetic face world: procedurally drawn, labelled faces for training and measuring flip
end to end where no real face data can be had.

- `attributes`: the attribute vocabularies, their couplings and the `AttributeSampler`.
- `faces`: `Identity` (a named person and their stable looks) and `Face` (one photo of them).
- `render`: drawing a `Face` under nuisances (pose, lighting, background, blur, noise, JPEG).
- `captions`: FaceCaption-15M-style captions from the labels.
- `spoof`: the eight presentation-attack renderers (`ATTACKS`) and live images.
- `scenes`: group photos of 1-4 people with boxes and a news caption naming some of them.
- `qa`: questions and short answers about a face's attributes.
- `world`: records for each kind, split by identity, in parallel; writing with a dataset card
  (`write_synthetic`, behind `flip data synth`).
"""

from flip.data.synthetic.attributes import VOCABULARIES, AttributeSampler
from flip.data.synthetic.captions import Caption, build_caption
from flip.data.synthetic.faces import Face, Identity, make_identities, sample_face
from flip.data.synthetic.qa import sample_qa
from flip.data.synthetic.render import Nuisance, draw_face, render_face, sample_nuisance
from flip.data.synthetic.scenes import sample_scene
from flip.data.synthetic.spoof import ATTACKS, render_spoof
from flip.data.synthetic.world import KINDS, SynthConfig, generate, make_record, write_synthetic

__all__ = [
    "ATTACKS",
    "KINDS",
    "AttributeSampler",
    "Caption",
    "Face",
    "Identity",
    "Nuisance",
    "SynthConfig",
    "VOCABULARIES",
    "build_caption",
    "draw_face",
    "generate",
    "make_identities",
    "make_record",
    "render_face",
    "render_spoof",
    "sample_face",
    "sample_nuisance",
    "sample_qa",
    "sample_scene",
    "write_synthetic",
]
