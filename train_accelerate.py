"""Train a Deep Photo Enhancer generator: `accelerate launch train_accelerate.py --config FILE`.

Thin entry point; the work is in `dpe_hf.training`. See `--help` and configs/.
"""

import sys

from dpe_hf.training.cli import main

if __name__ == "__main__":
    sys.exit(main())
