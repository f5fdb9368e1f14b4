"""`flip info [MODEL]`: what a model name resolves to, its towers, sizes and processor settings."""

from __future__ import annotations

import argparse
import json


def describe(model, processor) -> dict:
    """A JSON-able summary of a loaded model and processor."""
    cfg = model.config

    def count(module):
        return sum(p.numel() for p in module.parameters())

    return {
        "vision_tower": cfg.vision_config.model_type,
        "text_tower": cfg.text_config.model_type,
        "embed_dim": cfg.embed_dim,
        "image_size": cfg.image_size,
        "parameters": {
            "vision": count(model.vision_model),
            "text": count(model.text_model),
            "total": count(model),
        },
        "temperature": round(float(model.temperature), 6),
        "itm_head": model.itm_head is not None,
        "liveness_threshold": (cfg.liveness_calibration or {}).get("threshold"),  # shipped by flip liveness-calibrate
        "processor": processor.to_dict() if hasattr(processor, "to_dict") else repr(processor),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="flip info", description=__doc__)
    parser.add_argument("model", nargs="?", default=None, help="model name, Hub id, directory or file (default: the embedded model)")
    args = parser.parse_args(argv)

    from flip.hub import load

    model, processor = load(args.model)
    print(json.dumps(describe(model, processor), indent=2, default=str))
    return 0
