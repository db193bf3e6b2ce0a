"""Model resolution: local folders, run folders, the bundled model and hub repo ids offline."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from dpe_hf import DPEGenerator
from dpe_hf.errors import ModelLoadError
from dpe_hf.hub import DEFAULT_MODEL, DEFAULT_REPO_ID, add_to_hf_cache, bundled_models, load_generator

REPO = Path(__file__).resolve().parents[1]


def test_the_default_model_is_bundled_in_hub_layout():
    folder = bundled_models()[DEFAULT_MODEL]
    assert {"config.json", "model.safetensors", "README.md"} <= {p.name for p in folder.iterdir()}
    assert (folder / "model.safetensors").stat().st_size <= 15 * 1024 * 1024
    card = (folder / "README.md").read_text()
    assert "pipeline_tag: image-to-image" in card and "license: mit" in card
    assert "train_accelerate.py --config configs/dpe-expertC.yaml" in card


def test_repo_id_through_an_offline_cache_loads_the_bundled_weights(tmp_path):
    # huggingface_hub reads HF_HUB_OFFLINE / HF_HUB_CACHE at import: use a fresh interpreter.
    add_to_hf_cache(bundled_models()[DEFAULT_MODEL], DEFAULT_REPO_ID, tmp_path / "hub")
    script = textwrap.dedent(f"""
        import torch
        from dpe_hf import DPEGenerator
        from dpe_hf.hub import load_generator
        by_id = DPEGenerator.from_pretrained({DEFAULT_REPO_ID!r})
        bundled = load_generator({DEFAULT_MODEL!r})
        a, b = by_id.state_dict(), bundled.state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        x = torch.rand(1, 3, 64, 96)
        assert torch.equal(by_id(x), bundled(x))
        print("same weights")
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub")}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                            timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "same weights" in result.stdout


def test_uncached_repo_id_offline_is_one_clear_line(tmp_path):
    script = "from dpe_hf.hub import load_generator; load_generator('someone/not-cached')"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                            timeout=120, cwd=REPO)
    assert result.returncode != 0
    assert "someone/not-cached: not in the local Hugging Face cache" in result.stderr


def test_resolution_order(tmp_path):
    DPEGenerator(width=0.25).save_pretrained(tmp_path / "model")
    DPEGenerator(width=0.25).save_pretrained(tmp_path / "run" / "generator")
    assert load_generator(tmp_path / "model").width == 0.25          # a model folder
    assert load_generator(tmp_path / "run").width == 0.25            # a run folder
    assert isinstance(load_generator(DEFAULT_MODEL), DPEGenerator)   # the bundled name
    with pytest.raises(ModelLoadError, match="not a model folder"):
        load_generator(tmp_path)                                     # an existing folder without a model
    with pytest.raises(ModelLoadError, match="no such folder"):
        load_generator("no-such-thing")


def test_bad_config_json_is_a_model_load_error(tmp_path):
    DPEGenerator(width=0.25).save_pretrained(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="config.json"):
        load_generator(tmp_path)


def test_add_to_hf_cache_layout(tmp_path):
    DPEGenerator(width=0.25).save_pretrained(tmp_path / "m")
    snapshot = add_to_hf_cache(tmp_path / "m", "org/name", tmp_path / "cache")
    repo = tmp_path / "cache" / "models--org--name"
    assert (repo / "refs" / "main").read_text() == snapshot.name
    assert (snapshot / "model.safetensors").is_file()
    with torch.no_grad():
        x = torch.rand(1, 3, 32, 32)
        assert torch.equal(DPEGenerator.from_pretrained(snapshot)(x), DPEGenerator.from_pretrained(tmp_path / "m")(x))


def test_the_bundled_card_is_the_published_one():
    assert DEFAULT_MODEL in bundled_models()
    for name, folder in bundled_models().items():  # every bundled style has its card
        published = REPO / "model_cards" / f"{name}.md"
        assert (folder / "README.md").read_text() == published.read_text(), name
