"""SECLA and SECLA-B: learning which face is which name from image-caption pairs alone.

Follows papers.md ("SECLA and SECLA-B"). Design choices:
- Features are frozen: faces through the FLIP image tower on face crops (`embed.embed_faces`), names
  through the text tower on the bare name string (`embed.embed_names`), or a learned table of names
  (`SECLAConfig.name_table`, the transductive setting where every name is known in advance).
  Only the small MLP heads of `SECLAHeads` and the NONAME vector learn.
- Batches are padded: faces (B, F, D) with a (B, F) mask, names (B, N, D) with a (B, N) mask.
  Every pair must hold at least one face and one name.
- `secla_scores`: for caption j and image k, names->faces = mean over j's names of the best cosine
  to a face of k; faces->names = mean over k's faces of the best cosine to a name of j. NONAME
  joins every caption's names on the faces->names side only, so a face nobody names can still
  score well without pulling a name towards it (it is the same for every caption, so it adds no
  discrimination, only slack). Both are (B, B) matrices indexed [caption, image].
- `secla_loss`: cross-entropy over the batch in each direction (each caption's row over images,
  each image's column over captions) with the matching pair as target, scores divided by a
  temperature, plus 0.15 x the MSE between the two matrices' diagonals (the symmetry term).
- SECLA-B: `easy_pairs` picks stage 1's one-face-one-name pairs; `prototype_loss` keeps the
  alignments learned so far: each known name's embedding must be closer to its own prototype (the
  mean face labelled with it) than to other names' prototypes (cross-entropy over prototypes).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from flip.naming.embed import FACE_EMBEDDERS

__all__ = ["SECLAConfig", "SECLAHeads", "SECLAScores", "secla_scores", "secla_loss", "prototype_loss",
           "face_prototypes", "easy_pairs"]


@dataclass
class SECLAScores:
    """names_to_faces[j, k] and faces_to_names[j, k], (B, B), caption j against image k."""

    names_to_faces: torch.Tensor
    faces_to_names: torch.Tensor


def _check(embeds: torch.Tensor, mask: torch.Tensor, what: str) -> None:
    if embeds.ndim != 3 or mask.shape != embeds.shape[:2]:
        raise ValueError(f"{what}: expected embeddings (B, L, D) and a (B, L) mask, got {tuple(embeds.shape)} "
                         f"and {tuple(mask.shape)}")
    empty = (~mask.bool()).all(dim=1)
    if empty.any():
        raise ValueError(f"{what}: pair {int(empty.nonzero()[0])} has none; every pair needs at least one")


def secla_scores(face_embeds: torch.Tensor, face_mask: torch.Tensor, name_embeds: torch.Tensor,
                 name_mask: torch.Tensor, noname: torch.Tensor | None = None) -> SECLAScores:
    """The two SECLA score matrices from padded embeddings (normalised here).

    face_embeds (B, F, D), face_mask (B, F); name_embeds (B, N, D), name_mask (B, N); noname (D,).
    """
    _check(face_embeds, face_mask, "faces")
    _check(name_embeds, name_mask, "names")
    if face_embeds.shape[0] != name_embeds.shape[0] or face_embeds.shape[2] != name_embeds.shape[2]:
        raise ValueError(f"faces {tuple(face_embeds.shape)} and names {tuple(name_embeds.shape)}: batch size and "
                         "embedding size must agree")
    faces = F.normalize(face_embeds, dim=-1)
    names = F.normalize(name_embeds, dim=-1)
    fmask, nmask = face_mask.bool(), name_mask.bool()
    sim = torch.einsum("jnd,kfd->jknf", names, faces)  # (B captions, B images, N, F)
    low = torch.finfo(sim.dtype).min
    best_face = sim.masked_fill(~fmask[None, :, None, :], low).amax(dim=3)  # (B, B, N)
    names_to_faces = (best_face * nmask[:, None, :]).sum(-1) / nmask.sum(-1, keepdim=True)
    best_name = sim.masked_fill(~nmask[:, None, :, None], low).amax(dim=2)  # (B, B, F)
    if noname is not None:
        to_noname = faces @ F.normalize(noname, dim=-1)  # (B images, F)
        best_name = torch.maximum(best_name, to_noname[None])
    faces_to_names = (best_name * fmask[None]).sum(-1) / fmask.sum(-1)[None]
    return SECLAScores(names_to_faces, faces_to_names)


def secla_loss(scores: SECLAScores, temperature: float = 0.07, symmetry_weight: float = 0.15) -> torch.Tensor:
    """Cross-entropy over the batch in both directions (target: the matching pair) plus
    `symmetry_weight` x MSE between the two diagonals. Scalar."""
    nf, fn = scores.names_to_faces, scores.faces_to_names
    target = torch.arange(nf.shape[0], device=nf.device)
    contrastive = F.cross_entropy(nf / temperature, target) + F.cross_entropy(fn.t() / temperature, target)
    return contrastive + symmetry_weight * F.mse_loss(nf.diagonal(), fn.diagonal())


def face_prototypes(face_embeds: torch.Tensor, labels: torch.Tensor, n_names: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean normalised face of each name: face_embeds (M, D), labels (M,) in [0, n_names) ->
    prototypes (n_names, D) and a (n_names,) mask of names that have at least one face."""
    faces = F.normalize(face_embeds, dim=-1)
    sums = torch.zeros(n_names, faces.shape[1], dtype=faces.dtype, device=faces.device).index_add_(0, labels, faces)
    counts = torch.bincount(labels, minlength=n_names)
    return sums / counts.clamp(min=1)[:, None], counts > 0


def prototype_loss(name_embeds: torch.Tensor, prototypes: torch.Tensor, temperature: float = 0.07) -> torch.Tensor:
    """SECLA-B's memory: name i's embedding (K, D) against the K prototypes (K, D), target i."""
    logits = F.normalize(name_embeds, dim=-1) @ F.normalize(prototypes, dim=-1).t() / temperature
    return F.cross_entropy(logits, torch.arange(len(logits), device=logits.device))


def easy_pairs(face_counts, name_counts) -> list[int]:
    """Indices of SECLA-B's stage-1 pairs: exactly one face and one name."""
    return [i for i, (f, n) in enumerate(zip(face_counts, name_counts)) if f == 1 and n == 1]


@dataclass
class SECLAConfig:
    """The learned part of SECLA: two MLP heads and NONAME. Round-trips through `asdict`."""

    face_dim: int  # input face feature size (the image tower's embedding size)
    name_dim: int = 0  # input name feature size (the text tower's); unused with name_table
    dim: int = 128  # shared embedding size after the heads
    hidden: int = 256  # MLP hidden size
    name_table: list[str] = field(default_factory=list)  # learn one embedding per listed name instead of text features
    temperature: float = 0.07  # divides the scores inside the cross-entropies
    symmetry_weight: float = 0.15  # weight of the diagonal MSE (papers.md: 0.15)
    prototype_weight: float = 1.0  # SECLA-B: weight of the prototype loss in stage 2
    faces: str = "flip"  # the face embedder the heads were trained on (flip.naming.embed): flip | dlib

    def __post_init__(self):
        if self.faces not in FACE_EMBEDDERS:
            raise ValueError(f"faces={self.faces!r}: expected one of {list(FACE_EMBEDDERS)}")
        for name in ("face_dim", "dim", "hidden"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}={getattr(self, name)}: expected a positive size")
        if not self.name_table and int(self.name_dim) < 1:
            raise ValueError(f"name_dim={self.name_dim}: expected a positive size (or give name_table)")
        if len(set(self.name_table)) != len(self.name_table):
            raise ValueError("name_table: names must be unique")
        if not self.temperature > 0:
            raise ValueError(f"temperature={self.temperature}: expected > 0")
        if self.symmetry_weight < 0 or self.prototype_weight < 0:
            raise ValueError("symmetry_weight and prototype_weight: expected >= 0")

    def to_dict(self) -> dict:
        return asdict(self)


def _mlp(d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.GELU(), nn.Linear(hidden, d_out))


class SECLAHeads(nn.Module):
    """Projections of frozen face and name features into one space, plus the NONAME vector."""

    def __init__(self, config: SECLAConfig):
        super().__init__()
        self.config = config
        self.face_head = _mlp(config.face_dim, config.hidden, config.dim)
        if config.name_table:
            self.name_index = {n: i for i, n in enumerate(config.name_table)}
            self.name_embedding = nn.Embedding(len(config.name_table), config.dim)
            self.name_head = None
        else:
            self.name_head = _mlp(config.name_dim, config.hidden, config.dim)
        self.noname = nn.Parameter(torch.randn(config.dim) / config.dim ** 0.5)

    def faces(self, features: torch.Tensor) -> torch.Tensor:
        """(..., face_dim) -> (..., dim)."""
        return self.face_head(features)

    def names(self, features: torch.Tensor | None = None, names: list[str] | None = None) -> torch.Tensor:
        """Text features (..., name_dim) -> (..., dim); with a name table, the names' rows (len(names), dim)."""
        if self.name_head is not None:
            if features is None:
                raise ValueError("names: this head projects text features; pass `features`")
            return self.name_head(features)
        unknown = [n for n in names or [] if n not in self.name_index]
        if names is None or unknown:
            raise ValueError(f"names: not in the name table: {unknown[:5]}" if unknown else
                             "names: this head uses a name table; pass `names`")
        ids = torch.tensor([self.name_index[n] for n in names], device=self.noname.device)
        return self.name_embedding(ids)
