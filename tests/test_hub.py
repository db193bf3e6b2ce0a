"""Model resolution: local folders, run folders, the bundled model and hub repo ids offline; model
specs that say what they are, and fail fast when they name nothing."""

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from dpe_hf import DPEDiscriminator, DPEGenerator
from dpe_hf.errors import ModelLoadError
from dpe_hf.hub import DEFAULT_MODEL, DEFAULT_REPO_ID, add_to_hf_cache, bundled_models, load_generator
from dpe_hf.model_spec import ModelSource, hub_reachable, parse_model_spec
from helpers import REPO, free_port


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


# --------------------------------------------------------------------------------------------
# model specs say what they are (issue 19)
# --------------------------------------------------------------------------------------------


def _fresh_python(script: str, tmp_path: Path, *, offline: bool) -> tuple[subprocess.CompletedProcess, float]:
    """Run `script` in a new interpreter with an empty HF cache (HF_HUB_OFFLINE set or not: unset
    is the "hub unreachable" case, with the hub's address a closed port of this machine, so that
    no test sends anything outside it); the seconds it prints after its imports come back as the
    second value."""
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    env["HF_HUB_CACHE"] = str(tmp_path / f"empty-cache-{offline}")
    env["HF_ENDPOINT"] = f"http://127.0.0.1:{free_port()}"  # nothing listens there: refused
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=env, capture_output=True,
                            text=True, timeout=120, cwd=REPO)
    seconds = [float(line.split()[1]) for line in result.stdout.splitlines() if line.startswith("SECONDS")]
    return result, seconds[0] if seconds else float("nan")


@pytest.mark.parametrize("offline", [False, True])
@pytest.mark.parametrize("spec", [DEFAULT_REPO_ID, DEFAULT_MODEL])
def test_from_pretrained_of_the_readme_returns_the_bundled_model_at_once(tmp_path, spec, offline):
    result, seconds = _fresh_python(f"""
        import time
        import torch
        from dpe_hf import DPEGenerator
        from dpe_hf.hub import load_generator
        start = time.perf_counter()
        model = DPEGenerator.from_pretrained({spec!r})
        print("SECONDS", time.perf_counter() - start)
        bundled = load_generator({DEFAULT_MODEL!r})
        a, b = model.state_dict(), bundled.state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        assert not model.training
    """, tmp_path, offline=offline)
    assert result.returncode == 0, result.stderr[-2000:]
    assert seconds < 5, seconds
    notes = [line for line in result.stderr.splitlines() if DEFAULT_REPO_ID in line]
    if spec == DEFAULT_REPO_ID:  # one line saying which copy was loaded
        assert len(notes) == 1 and f"loaded the bundled copy ({DEFAULT_MODEL})" in notes[0], result.stderr
    else:
        assert notes == [], result.stderr


def test_a_cached_hub_copy_of_the_default_repo_is_preferred_and_said(tmp_path):
    add_to_hf_cache(bundled_models()[DEFAULT_MODEL], DEFAULT_REPO_ID, tmp_path / "hub")
    script = f"from dpe_hf import DPEGenerator; DPEGenerator.from_pretrained({DEFAULT_REPO_ID!r})"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub")}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                            timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"{DEFAULT_REPO_ID}: loaded the hub's copy (from the local cache)" in result.stderr


def test_an_unreachable_hub_fails_within_seconds_and_says_no_folder_has_that_name(tmp_path):
    result, seconds = _fresh_python("""
        import time
        from dpe_hf.errors import ModelLoadError
        from dpe_hf.hub import load_generator
        start = time.perf_counter()
        try:
            load_generator("someone/not-cached")
        except ModelLoadError as exc:
            print("SECONDS", time.perf_counter() - start)
            print("MESSAGE", exc)
    """, tmp_path, offline=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert seconds < 5, seconds  # not huggingface_hub's ~25 s of retries
    (message,) = [line for line in result.stdout.splitlines() if line.startswith("MESSAGE")]
    assert "someone/not-cached: " in message and "no local folder of that name" in message


def test_a_mistyped_local_run_fails_at_once_naming_it(tmp_path):
    photo = tmp_path / "x.jpg"
    Image.new("RGB", (32, 24), (120, 80, 40)).save(photo)
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    env.update(HF_HUB_CACHE=str(tmp_path / "cache"), PYTHONPATH=str(REPO),  # this checkout's dpe_hf
               HF_ENDPOINT=f"http://127.0.0.1:{free_port()}")
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "dpe_hf.cli", "enhance", str(photo), "-o", str(tmp_path / "out"),
                             "--model", "./runs/no-such-run"], env=env, capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)
    assert time.perf_counter() - start < 5
    assert result.returncode == 2
    assert result.stderr.strip() == "error: ./runs/no-such-run: no such file or folder"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("spec, message", [
    ("./runs/mine", "./runs/mine: no such file or folder"),
    ("../mine", "../mine: no such file or folder"),
    ("~/no-such-dpe-model", "~/no-such-dpe-model: no such file or folder"),
    ("/no/such/model", "/no/such/model: no such file or folder"),
    ("runs/mine.onnx", "runs/mine.onnx: no such ONNX file"),
    ("hf-hub:just-a-name", "hf-hub:just-a-name: a hub spec is hf-hub:org/name"),
    ("no-such-thing", "no-such-thing: no such folder, bundled model"),
])
def test_specs_written_as_local_paths_are_never_sent_to_the_hub(spec, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelLoadError) as info:
        parse_model_spec(spec)
    assert str(info.value).startswith(message)
    with pytest.raises(ModelLoadError, match=message.split(":")[0].replace(".", r"\.")):
        DPEGenerator.from_pretrained(spec)


def test_what_each_spec_form_resolves_to(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    DPEGenerator(width=0.25).save_pretrained(tmp_path / "org" / "name")  # a local folder shaped like a repo id
    DPEGenerator(width=0.25).save_pretrained(tmp_path / "run" / "generator")
    assert parse_model_spec("org/name") == ModelSource("folder", "org/name", "org/name")
    assert parse_model_spec("./org/name").kind == "folder"
    assert parse_model_spec("hf-hub:org/name") == ModelSource("hub", "org/name", "hf-hub:org/name")
    assert parse_model_spec("other/name") == ModelSource("hub", "other/name", "other/name")
    assert parse_model_spec("run").location == str(Path("run") / "generator")
    assert parse_model_spec(None).location == str(bundled_models()[DEFAULT_MODEL])
    assert DPEGenerator.from_pretrained("./org/name").width == 0.25
    assert DPEGenerator.from_pretrained(DEFAULT_MODEL).width == load_generator(DEFAULT_MODEL).width


def test_hub_reachable_answers_quickly_both_ways():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert hub_reachable(f"http://127.0.0.1:{server.getsockname()[1]}")
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, not listening: refused at once
    start = time.perf_counter()
    assert not hub_reachable(f"http://127.0.0.1:{port}")
    assert time.perf_counter() - start < 1


def test_saved_configs_name_their_class_and_unnamed_ones_still_load(tmp_path):
    DPEGenerator(width=0.25).save_pretrained(tmp_path / "g")
    DPEDiscriminator(width=0.25).save_pretrained(tmp_path / "d")
    assert json.loads((tmp_path / "g" / "config.json").read_text())["_class_name"] == "DPEGenerator"
    assert json.loads((tmp_path / "d" / "config.json").read_text())["_class_name"] == "DPEDiscriminator"
    with pytest.raises(ModelLoadError, match="config.json is for a DPEDiscriminator, not a DPEGenerator"):
        load_generator(tmp_path / "d")
    config = json.loads((tmp_path / "g" / "config.json").read_text())
    del config["_class_name"]  # as saved before configs named their class
    (tmp_path / "g" / "config.json").write_text(json.dumps(config))
    assert load_generator(tmp_path / "g").width == 0.25
    assert "_class_name" not in json.loads((bundled_models()[DEFAULT_MODEL] / "config.json").read_text())
    assert isinstance(load_generator(DEFAULT_MODEL), DPEGenerator)
