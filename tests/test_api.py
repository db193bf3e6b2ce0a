"""The public surface: the names, parameters and commands that users, the README and the hub's
model cards rely on. Adding things is free; renaming or dropping one of these fails here, so
that it is a decision, not an accident of a refactoring."""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import subprocess
import sys
import tomllib

import pytest

from helpers import REPO, load_app


def parameters(fn) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(fn).parameters)


def assert_keywords(fn, expected: dict) -> None:
    """`fn` takes each of `expected` by keyword, with that default (`inspect.Parameter.empty`:
    required)."""
    found = parameters(fn)
    for name, default in expected.items():
        assert name in found, f"{fn.__qualname__} lost its parameter {name!r}"
        assert found[name].kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY), name
        assert found[name].default == default, (fn.__qualname__, name, found[name].default)


# -- the package ------------------------------------------------------------------------------------


def test_top_level_names_are_lazy_aliases_of_their_modules():
    import dpe_hf

    expected = {"DPEGenerator": "dpe_hf.models.generator", "DPEDiscriminator": "dpe_hf.models.discriminator",
                "enhance": "dpe_hf.inference", "load_generator": "dpe_hf.hub"}
    assert set(expected) | {"__version__"} <= set(dpe_hf.__all__)
    for name, module in expected.items():
        assert getattr(dpe_hf, name) is getattr(importlib.import_module(module), name)
    assert isinstance(dpe_hf.__version__, str) and dpe_hf.__version__.count(".") == 2


def test_generator_loads_saves_and_runs_with_its_hub_methods():
    from dpe_hf import DPEGenerator

    assert_keywords(DPEGenerator.__init__, {"width": 1.0, "individual_bn": False, "selu": "released",
                                            "init_scale": 1e-3, "bn_momentum": 0.1})
    assert list(parameters(DPEGenerator.from_pretrained))[:1] == ["pretrained_model_name_or_path"]
    assert_keywords(DPEGenerator.from_pretrained, {"cache_dir": None, "revision": None, "local_files_only": False})
    assert list(parameters(DPEGenerator.save_pretrained))[:2] == ["self", "save_directory"]
    assert_keywords(DPEGenerator.save_pretrained, {"push_to_hub": False})
    assert list(parameters(DPEGenerator.push_to_hub))[:2] == ["self", "repo_id"]
    assert_keywords(DPEGenerator.forward, {"global_feature": None, "bn_set": 0})
    assert_keywords(DPEGenerator.encode_global, {"bn_set": 0})


def test_critic_is_public_with_its_options():
    from dpe_hf import DPEDiscriminator

    assert_keywords(DPEDiscriminator.__init__, {"width": 1.0, "init_scale": None, "norm": "instance"})


ENHANCE_OPTIONS = {"max_side": 512, "strength": 1.0, "method": "guided"}


@pytest.mark.parametrize("name, options", [
    ("enhance", {**ENHANCE_OPTIONS, "tile": 1024, "overlap": 64, "icc_profile": None, "auto_exposure": False,
                 "levels": None}),
    ("enhance_array", {**ENHANCE_OPTIONS, "tile": 1024, "overlap": 64, "icc_profile": None, "auto_exposure": False}),
    ("enhance_tensor", {**ENHANCE_OPTIONS, "tile": 1024, "overlap": 64}),
])
def test_enhance_functions_take_a_generator_an_image_and_keyword_options(name, options):
    from dpe_hf import inference

    fn = getattr(inference, name)
    assert list(parameters(fn))[:2] == ["generator", "image" if name != "enhance_tensor" else "x"]
    assert_keywords(fn, options)


def test_load_generator_takes_a_spec_and_where_to_put_it():
    from dpe_hf.hub import load_generator

    assert_keywords(load_generator, {"spec": None, "device": "cpu", "cache_dir": None})


def test_errors_users_catch_share_one_base():
    from dpe_hf import errors

    for name in ("ImageReadError", "ImageTooLargeError", "ImageWriteError", "ModelLoadError", "ConfigError"):
        assert issubclass(getattr(errors, name), errors.DPEError), name
    assert issubclass(errors.ImageTooLargeError, errors.ImageReadError)


def test_lut_and_baseline_functions_are_there():
    from dpe_hf import baselines
    from dpe_hf.export import lut

    for name in ("LutFitter", "apply_lut", "fit_lut", "identity_lut", "read_cube", "write_cube"):
        assert callable(getattr(lut, name)), name
    assert_keywords(lut.apply_lut, {"interp": "trilinear"})
    assert set(baselines.__all__) == {"FixedLut", "ToneMatch", "auto_levels", "autocontrast", "identity"}


# -- the `dpe` command ------------------------------------------------------------------------------

COMMANDS = {
    ("enhance",): ["-o", "--output", "--model", "--strength", "--auto-exposure", "--suffix", "--ext", "--quality",
                   "--max-side", "--max-pixels", "--method", "--tile", "--device", "--overwrite", "--skip-existing",
                   "--recursive", "--save-lut", "--json", "--overlap-io", "--levels", "--runtime"],
    ("eval",): ["--ref", "--pred", "--suffix", "--model", "--input", "--strength", "--max-side", "--max-pixels",
                "--json"],
    ("export", "onnx"): ["-o", "--output", "--model", "--opset", "--overwrite"],
    ("lut",): ["-o", "--output", "--model", "--images", "--size", "--max-side", "--strength", "--title",
               "--recursive", "--max-pixels", "--overwrite"],
    ("apply-lut",): ["-o", "--output", "--interp", "--suffix", "--ext", "--quality", "--max-pixels", "--overwrite",
                     "--skip-existing", "--recursive", "--json", "--overlap-io"],
}


def help_text(argv: list[str]) -> str:
    from dpe_hf.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0, argv
    return out.getvalue()


def test_dpe_lists_its_commands():
    text = help_text([])
    for command in ("enhance", "eval", "export", "lut", "apply-lut"):
        assert f"    {command} " in text or f"    {command}\n" in text, command


@pytest.mark.parametrize("command", list(COMMANDS), ids=" ".join)
def test_each_command_keeps_its_flags(command):
    words = set(help_text(list(command)).replace("[", " ").replace("]", " ").replace(",", " ").split())
    missing = [flag for flag in COMMANDS[command] if flag not in words]
    assert not missing, f"dpe {' '.join(command)} lost {missing}"


def test_enhance_method_and_device_choices():
    text = " ".join(help_text(["enhance"]).split())
    for word in ("guided", "residual", "tiled", "cuda", "cpu"):
        assert word in text, word


def test_the_console_script_and_python_m_run_the_same_main():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, attr = scripts["dpe"].partition(":")
    from dpe_hf.cli import main

    assert getattr(importlib.import_module(module), attr) is main
    proc = subprocess.run([sys.executable, "-m", "dpe_hf.cli", "--version"], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("dpe "), proc.stderr


# -- the app's endpoints ----------------------------------------------------------------------------


def test_app_endpoints_and_their_parameters(monkeypatch):
    pytest.importorskip("gradio")
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    endpoints = load_app().build_demo().get_api_info()["named_endpoints"]
    for name in ("/enhance", "/blend", "/download"):
        assert [p["parameter_name"] for p in endpoints[name]["parameters"]] == [
            "image", "strength", "model", "auto_exposure"], name
