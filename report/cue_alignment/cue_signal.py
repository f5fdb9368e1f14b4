"""How strongly does each CelebA label change the aligned pixels, against the world's own variation?

    python report/cue_alignment/cue_signal.py --out report/cue_alignment/signal.json --image report/cue_alignment/signal.png

On aligned grey crops of freshly drawn faces (`measure.draw`, its seed-independent test protocol),
per attribute: the mean crop of the faces labelled true minus that of the faces labelled false; its
50 largest |differences| (grey levels) against the same for two random halves of the false faces
(what differences of means look like with no label behind them). A drawn cue that a learner could
use shows well above that noise where it is drawn (Smiling: the mouth); one near the noise is not
drawn distinguishably at 112 px under the world's pose, lighting and identity variation.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from measure import draw  # noqa: E402

from flip.data.synthetic.cues import CELEBA_40, UNDRAWN  # noqa: E402


def top_mean(d: torch.Tensor, k: int = 50) -> float:
    return float(d.abs().flatten().topk(k).values.mean())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=3000)
    p.add_argument("--seed", type=int, default=777)
    p.add_argument("--out", required=True)
    p.add_argument("--image", default=None, help="also save the difference images of a few attributes (PNG)")
    args = p.parse_args(argv)
    _, aligned, labels = draw(args.n, args.seed)
    grey = aligned.float().mean(1)
    gen = torch.Generator().manual_seed(0)
    rows, tiles = {}, []
    for a in (a for a in CELEBA_40 if a not in UNDRAWN):
        pos = torch.tensor([r.get(a) == "true" for r in labels])
        neg = torch.nonzero(torch.tensor([r.get(a) == "false" for r in labels])).squeeze(1)
        if pos.sum() < 20 or len(neg) < 40:
            continue
        diff = grey[pos].mean(0) - grey[neg].mean(0)
        halves = neg[torch.randperm(len(neg), generator=gen)]
        noise = grey[halves[: len(neg) // 2]].mean(0) - grey[halves[len(neg) // 2: 2 * (len(neg) // 2)]].mean(0)
        rows[a] = {"true": int(pos.sum()), "false": len(neg), "signal": top_mean(diff), "noise": top_mean(noise)}
        if a in ("Smiling", "Big_Nose", "Pointy_Nose", "Arched_Eyebrows", "Bushy_Eyebrows", "Big_Lips"):
            tiles.append((128 + 4 * diff).clamp(0, 255).byte().numpy())
    Path(args.out).write_text(json.dumps({"command": "python report/cue_alignment/cue_signal.py " + " ".join(argv or sys.argv[1:]),
                                          "faces": args.n, "attributes": rows}, indent=2) + "\n")
    if args.image:
        Image.fromarray(np.concatenate(tiles, axis=1)).resize((112 * 2 * len(tiles), 224), Image.NEAREST).save(args.image)
    for a, r in sorted(rows.items(), key=lambda kv: kv[1]["signal"] / kv[1]["noise"]):
        print(f"{a:<22} signal {r['signal']:6.1f}  noise {r['noise']:5.1f}  ratio {r['signal'] / r['noise']:5.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
