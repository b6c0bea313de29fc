#!/usr/bin/env python3
"""Compare two sets of Grafana dashboard JSON semantically: key order is ignored, and so are the
defaults grafana-foundation-sdk writes that Grafana assumes anyway (``transparent: false``,
empty ``transformations``, ``repeatDirection: h``, ``style: dark``, empty ``overrides``).

    .venv/bin/python deploy/grafana/compare.py OLD_DIR NEW_DIR   # exit 1 and list differences

Used once to check that the SDK rewrite of generate.py kept every panel, title, query, unit,
threshold, data source and uid; it prints each remaining difference as ``file: path: old -> new``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

#: (key, value) pairs the SDK emits that equal Grafana's default when the key is absent.
SDK_DEFAULTS = {
    ("transparent", False),
    ("repeatDirection", "h"),
    ("style", "dark"),
    ("showTypeIcons", False),
    ("targetBlank", False),
    ("url", ""),
    ("tooltip", ""),
    ("icon", ""),
    ("auto", False),
}


def normalised(value: Any) -> Any:
    """``value`` without SDK defaults and empty containers (absent and empty mean the same)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if isinstance(item, (bool, str)) and (key, item) in SDK_DEFAULTS:
                continue
            item = normalised(item)
            if item is None or item == [] or item == {}:
                continue
            out[key] = item
        return out
    if isinstance(value, list):
        return [normalised(v) for v in value]
    return value


def differences(old: Any, new: Any, path: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        found: list[str] = []
        for key in sorted(set(old) | set(new)):
            found += differences(
                old.get(key, "<absent>"), new.get(key, "<absent>"), f"{path}/{key}"
            )
        return found
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [
            d
            for i, (o, n) in enumerate(zip(old, new, strict=True))
            for d in differences(o, n, f"{path}[{i}]")
        ]
    return [] if old == new else [f"{path}: {json.dumps(old)} -> {json.dumps(new)}"]


def main(argv: list[str]) -> int:
    old_dir, new_dir = (Path(a) for a in argv)
    found = 0
    for old_file in sorted(old_dir.glob("*.json")):
        new_file = new_dir / old_file.name
        old = normalised(json.loads(old_file.read_text()))
        new = normalised(json.loads(new_file.read_text())) if new_file.exists() else {}
        for line in differences(old, new):
            found += 1
            print(f"{old_file.name}: {line}")
    print(f"{found} difference(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
