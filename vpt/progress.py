"""Progress bars with ETA for long work: live on a terminal, a line every 30 s in a log file
(Snakemake redirects each job's output to its log)."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm


def progress(iterable: Any = None, **kwargs: Any) -> tqdm:
    tty = sys.stderr.isatty()
    kwargs.setdefault("mininterval", 1.0 if tty else 30.0)
    kwargs.setdefault("dynamic_ncols", tty)
    kwargs.setdefault("disable", False)  # not tqdm's None (off when not a tty): a log shows the ETA too
    return tqdm(iterable, **kwargs)
