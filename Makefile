# Two entry points for a fresh machine with only Python:
#   make demo   install everything and start the Gradio demo on http://127.0.0.1:7860
#   make test   install the project with its test extras and run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch; a plain `pip install torch` would pull a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0

.PHONY: demo test venv install install-test system-test-deps wheel-check clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# torch first, so that the project's own `torch>=2.4` is already satisfied
$(VENV)/.torch: $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install --quiet "$(TORCH_SPEC)" \
		|| $(BIN)/pip install --quiet "torch>=2.4"
	touch $@

venv: $(VENV)/.torch

install: venv
	$(BIN)/pip install --quiet -e ".[app]"

install-test: venv
	$(BIN)/pip install --quiet -e ".[test,app,export]"

# Browser tests drive Debian's chromium (never `playwright install`) and the LUT tests check
# our .cube files in Debian's ffmpeg: install them when we can (root with apt).
system-test-deps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		missing=""; [ -x /usr/bin/chromium ] || missing="chromium"; \
		command -v ffmpeg >/dev/null || missing="$$missing ffmpeg"; \
		if [ -n "$$missing" ]; then apt-get update -qq && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi; \
	fi

demo: install
	GRADIO_ANALYTICS_ENABLED=False $(BIN)/python app.py

test: install-test system-test-deps
	$(BIN)/python -m pytest -q

# A non-editable wheel must carry everything it needs at run time (model cards, checkpoints).
wheel-check: venv
	rm -rf dist/wheelcheck && $(BIN)/pip wheel --quiet --no-deps -w dist/wheelcheck .
	rm -rf dist/wheelcheck/site && $(BIN)/pip install --quiet --no-deps --target dist/wheelcheck/site dist/wheelcheck/*.whl
	cd /tmp && PYTHONPATH=$(CURDIR)/dist/wheelcheck/site $(abspath $(BIN))/python -m dpe_hf.cli --help >/dev/null
	cd /tmp && PYTHONPATH=$(CURDIR)/dist/wheelcheck/site $(abspath $(BIN))/python -c \
		"from dpe_hf.resources import resource_dir, model_card_template; import dpe_hf.models.generator, dpe_hf.imageio, dpe_hf.data.corpora; \
		assert 'dist/wheelcheck/site' in str(resource_dir('model_cards')), resource_dir('model_cards'); \
		from dpe_hf.hub import load_generator, bundled_models; \
		assert 'dist/wheelcheck/site' in str(bundled_models()['dpe-expertC']); load_generator(); \
		from dpe_hf.model_spec import bundled_onnx; assert 'dist/wheelcheck/site' in str(bundled_onnx(None)); \
		from dpe_hf.training.presets import NAMES, preset_path, read_preset; \
		assert 'dist/wheelcheck/site' in str(preset_path('paired')); [read_preset(n) for n in NAMES]; print('wheel ok')"

clean:
	rm -rf $(VENV) dist build *.egg-info
