"""The two fuzzers of tests/cli/test_robustness.py, with many more examples.

    OMP_NUM_THREADS=1 python benchmarks/fuzz.py [--examples 5000] [--seed 0]

read_image: random bytes and mutated PNG/JPEG files must give an H x W x 3 uint8/uint16 array
or an ImageReadError.  cli: random argument lists must make `dpe` return 0/1/2 (or argparse's
SystemExit 0/2).  Every example runs (a failure is counted, not shrunk); the table gives the
examples, failures and seconds of each, and the first few failures are printed below it.
Exit code 1 if anything failed.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "cli"), str(ROOT / "tests")]  # test_robustness, and the helpers it imports

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def _settings(n: int):
    return settings(max_examples=n, deadline=None, database=None, derandomize=False,
                    phases=[Phase.generate], suppress_health_check=list(HealthCheck))


def fuzz_read_image(n: int, rng_seed: int, work: Path) -> tuple[int, list[str], Counter]:
    from test_robustness import check_read, file_bytes

    failures: list[str] = []
    outcomes: Counter = Counter()
    runs = 0

    @seed(rng_seed)
    @_settings(n)
    @given(data=file_bytes(), suffix=st.sampled_from([".png", ".jpg", ".bin"]))
    def prop(data: bytes, suffix: str) -> None:
        nonlocal runs
        runs += 1
        path = work / f"fuzz{suffix}"
        path.write_bytes(data)
        try:
            outcomes[check_read(path)] += 1
        except Exception:
            outcomes["FAIL"] += 1
            failures.append(f"{len(data)} bytes {data[:24]!r}...: {traceback.format_exc(limit=3)}")

    prop()
    return runs, failures, outcomes


def fuzz_cli(n: int, rng_seed: int, work: Path) -> tuple[int, list[str], Counter]:
    import numpy as np
    import torch
    from PIL import Image

    from dpe_hf.models.generator import DPEGenerator
    from helpers import photo
    from test_robustness import cli_argv, cli_vocabulary, run_cli

    model = work / "model"
    torch.manual_seed(0)
    DPEGenerator(width=0.25).save_pretrained(model)
    good = work / "good.png"
    Image.fromarray(photo(16, 20)).save(good)
    vocab = cli_vocabulary(work, model, good)
    failures: list[str] = []
    outcomes: Counter = Counter()
    runs = 0

    @seed(rng_seed)
    @_settings(n)
    @given(argv=cli_argv(vocab, work, model, good))
    def prop(argv: list[str]) -> None:
        nonlocal runs
        runs += 1
        try:
            outcomes[f"exit {run_cli(argv)}"] += 1
        except BaseException as exc:  # noqa: BLE001 - counted and reported
            if isinstance(exc, KeyboardInterrupt):
                raise
            outcomes["FAIL"] += 1
            failures.append(f"{argv!r}: {traceback.format_exc(limit=4)}")

    del np
    prop()
    return runs, failures, outcomes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--examples", type=int, default=5000, help="examples per fuzzer (default 5000)")
    p.add_argument("--seed", type=int, default=random.randrange(1 << 30), help="hypothesis seed")
    p.add_argument("--only", choices=("read_image", "cli"), help="run one fuzzer")
    args = p.parse_args(argv)

    rows, all_failures = [], []
    for name, fn in (("read_image", fuzz_read_image), ("cli", fuzz_cli)):
        if args.only and args.only != name:
            continue
        with tempfile.TemporaryDirectory(prefix=f"dpe-fuzz-{name}-") as tmp:
            start = time.perf_counter()
            runs, failures, outcomes = fn(args.examples, args.seed, Path(tmp))
            seconds = time.perf_counter() - start
        rows.append((name, runs, len(failures), seconds, ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items()))))
        all_failures += [f"[{name}] {f}" for f in failures[:5]]

    print(f"seed {args.seed}")
    print(f"| {'fuzzer':<10} | {'examples':>8} | {'failures':>8} | {'seconds':>7} | outcomes")
    print(f"|{'-' * 12}|{'-' * 10}|{'-' * 10}|{'-' * 9}|{'-' * 40}")
    for name, runs, nfail, seconds, outcomes in rows:
        print(f"| {name:<10} | {runs:>8} | {nfail:>8} | {seconds:>7.1f} | {outcomes}")
    for failure in all_failures:
        print(failure, file=sys.stderr)
    return 1 if any(r[2] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
