"""What a finished run leaves for users: each final model's folder (`save_pretrained`) with a
model card filled from the config and the last validation, and optionally a push to the hub."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from dpe_hf.hub import DEFAULT_REPO_ID
from dpe_hf.training.config import TrainConfig


def model_card_kwargs(config: TrainConfig, run_dir: str | Path, repo_id: str | None = None) -> dict:
    """Fill the model card template from a training config and its run's last validation."""
    data = config.data
    folders = [data.input, data.expert, *data.synthetic, *data.source, *data.degraded_source, *data.target]
    sources = [p for p in folders if p]
    if data.generated:
        sources.append(f"{data.generated} procedural photos (dpe_hf.data.generated)")
    metrics = "Not evaluated yet."
    log = Path(run_dir) / "log.jsonl"
    if log.is_file():
        vals = [json.loads(line) for line in log.read_text().splitlines() if '"val/psnr"' in line]
        if vals:
            metrics = f"Validation PSNR at step {vals[-1]['step']}: {vals[-1]['val/psnr']:.2f} dB."
    return {
        "repo_id": repo_id or DEFAULT_REPO_ID,
        "training_mode": config.mode,
        "training_data": "; ".join(sources) or "not recorded",
        "reproduce": f"accelerate launch train_accelerate.py --config {Path(run_dir) / 'config.yaml'}",
        "training_details": f"{config.steps} steps, batch {config.batch_size}, crops {data.crop} px, "
                            f"lr {config.lr}, seed {config.seed}, width {config.model.width}.",
        "metrics": metrics,
    }


def publish(models: dict[str, torch.nn.Module], config: TrainConfig, run_dir: Path, push_to_hub: str | None) -> None:
    """RUN_DIR/<name>/ for each model, with a fresh card; "generator" is pushed to `push_to_hub`."""
    for name, model in models.items():
        folder = run_dir / name
        (folder / "README.md").unlink(missing_ok=True)  # regenerate the card for this run
        model.save_pretrained(folder, model_card_kwargs=model_card_kwargs(config, run_dir))
    if push_to_hub:
        model = models["generator"]
        model.push_to_hub(push_to_hub, model_card_kwargs=model_card_kwargs(config, run_dir, repo_id=push_to_hub))
