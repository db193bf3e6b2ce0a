"""`python -m dpe_hf.cli ...`, the same as `dpe ...`."""

import sys

from dpe_hf.cli import main

sys.exit(main())
