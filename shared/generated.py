"""Committed generated files (Prometheus and Alertmanager configs): write them, or check that
the committed ones are current (``generate.py --check`` in the tests)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from pathlib import Path


def write_or_check(files: Mapping[Path, str], *, check: bool) -> list[str]:
    """Write each file's text; with ``check``, write nothing and return the names of the files
    that are missing or differ (empty: all current)."""
    stale = []
    for path, text in files.items():
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
    return stale


def main(
    argv: list[str] | None, script: str, files: Callable[[], Mapping[Path, str]], doc: str
) -> int:
    """The command line of a generator ``script``: write ``files()``, or with ``--check`` exit
    1 naming the stale ones."""
    parser = argparse.ArgumentParser(prog=script, description=doc.strip().splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is not current")
    args = parser.parse_args(argv)
    stale = write_or_check(files(), check=args.check)
    if stale:
        print(f"stale: {', '.join(stale)}; run {script}", file=sys.stderr)
        return 1
    return 0
