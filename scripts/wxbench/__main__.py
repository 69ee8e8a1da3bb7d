"""`python scripts/wxbench` (what `./scripts/bench` runs), or `python -m wxbench` with scripts/
on sys.path: the benchmark, or with --generator one of its load generators."""

import sys
from pathlib import Path

if not __package__:
    # Run as a folder: Python put the folder itself first on sys.path, where these modules would
    # shadow any top-level module of the same name. The package is imported from its parent.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from wxbench.cli import main  # noqa: E402

main()
