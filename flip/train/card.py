"""The model card (README.md) written beside a trained model: data, training, figures, how to rebuild it.

Design choices: Markdown with a small YAML header (the Hub's model-card metadata); the figures are
the last held-out evaluation, shown against chance; the reproduction command points at the resolved
config that the run saved, so the card never restates hyper-parameters by hand.
"""

from __future__ import annotations

from pathlib import Path

from .config import TrainConfig


def model_card(config: TrainConfig, summary: dict, metrics: dict) -> str:
    """The card's Markdown. `summary`: train_pairs, eval_pairs, steps, epochs, global_batch,
    trainable/total parameters, seconds, samples_per_s, config_path; `metrics`: the last evaluation."""
    m, loss, towers = config.model, config.loss, config.towers
    recipe = [f"loss {loss.kind}"]
    if loss.momentum is not None:
        recipe.append(f"momentum encoders {loss.momentum}")
    if loss.queue_size:
        recipe.append(f"queue {loss.queue_size}")
    if loss.alpha:
        recipe.append(f"soft targets alpha {loss.alpha}")
    if loss.itm_weight:
        recipe.append(f"ITM weight {loss.itm_weight}")
    lines = [
        "---",
        "library_name: flip",
        "license: apache-2.0",
        "tags: [flip, clip, face, contrastive]",
        "pipeline_tag: zero-shot-image-classification",
        "---",
        "",
        f"# {Path(config.run.output_dir).name}",
        "",
        f"A FLIP model (`{m.name}` architecture{', text tower from all-MiniLM-L6-v2' if m.text_init == 'minilm' else ''}) "
        "trained with `flip train`. Load it with `flip.load(path)`.",
        "",
        "## Data",
        "",
        f"- training pairs: {summary.get('train_pairs')} from `{config.data.train}`"
        + (f" (split `{config.data.split}`)" if config.data.split else ""),
        f"- held-out pairs: {summary.get('eval_pairs')}"
        + (f" from `{config.data.eval}`" if config.data.eval else " split off the training data (whole images)"),
        "",
        "## Training",
        "",
        f"- {summary.get('steps')} optimiser steps, {summary.get('epochs')} epoch(s), global batch "
        f"{summary.get('global_batch')}",
        f"- AdamW lr {config.optim.lr}, weight decay {config.optim.weight_decay}, warm-up "
        f"{config.optim.warmup_steps} steps then cosine; {', '.join(recipe)}",
        f"- towers: vision {towers.vision}, text {towers.text}; trainable parameters "
        f"{summary.get('trainable_parameters'):,} of {summary.get('total_parameters'):,}",
        f"- {summary.get('seconds', 0):.0f} s, {summary.get('samples_per_s', 0):.1f} samples/s on {summary.get('device')}",
        "",
    ]
    lines += _figures(metrics)
    lines += usage_section()
    lines += [
        "## Reproduce",
        "",
        "```",
        f"flip train --config {summary.get('config_path')}",
        "```",
        "",
    ]
    return "\n".join(lines)


def usage_section(model: str = "<this repository or folder>") -> list[str]:
    """The card's "Use" section: flip, transformers' pipelines (after `import flip`) and the ONNX export."""
    return [
        "## Use",
        "",
        "```python",
        "import flip",
        "from transformers import pipeline",
        "",
        f'clf = pipeline("zero-shot-image-classification", model="{model}")',
        'clf("face.jpg", candidate_labels=["a smiling person", "a frowning person"])',
        "",
        "# by description (Menon & Vondrick): a flip prompt task or prompt file, with the deciding descriptors",
        f'by_description = pipeline("zero-shot-image-classification-by-description", model="{model}")',
        'by_description("face.jpg", task="emotion")',
        "```",
        "",
        "```",
        f"flip classify faces/ --model {model} --task emotion --explain",
        f"flip export {model} model-onnx/ --onnx --int8     # then: flip classify faces/ --backend onnx --model model-onnx/",
        "```",
        "",
    ]


def _figures(metrics: dict) -> list[str]:
    if not metrics:
        return ["## Figures", "", "No held-out evaluation was run.", ""]
    out = ["## Figures (held-out pairs)", "", "| retrieval | R@1 | R@5 | R@10 |", "| --- | --- | --- | --- |"]
    for direction, name in (("i2t", "image to text"), ("t2i", "text to image")):
        cells = [f"{100 * metrics[f'eval/{direction}_r{k}']:.1f}" for k in (1, 5, 10)
                 if f"eval/{direction}_r{k}" in metrics]
        if cells:
            out.append(f"| {name} | " + " | ".join(cells) + " |")
    attributes = sorted(k[len("eval/zeroshot_"):] for k in metrics if k.startswith("eval/zeroshot_") and k != "eval/zeroshot_mean")
    if attributes:
        out += ["", "| zero-shot attribute | accuracy | chance |", "| --- | --- | --- |"]
        for attribute in attributes:
            out.append(f"| {attribute} | {100 * metrics[f'eval/zeroshot_{attribute}']:.1f} | "
                       f"{100 * metrics[f'eval/chance_{attribute}']:.1f} |")
        out.append(f"| **mean** | {100 * metrics['eval/zeroshot_mean']:.1f} | {100 * metrics['eval/chance_mean']:.1f} |")
    out += ["", f"Held-out pairs evaluated: {metrics.get('eval/pairs')}. Recall counts every caption of the same "
            "image as a hit; zero-shot uses one template sentence per attribute value.", ""]
    return out


def write_model_card(directory: str | Path, config: TrainConfig, summary: dict, metrics: dict) -> Path:
    path = Path(directory) / "README.md"
    path.write_text(model_card(config, summary, metrics))
    return path
