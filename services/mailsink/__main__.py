"""``python -m services.mailsink [--dir .state/mail] [--port 1025]``: run until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from services.mailsink import controller
from shared.settings import REPO_ROOT


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m services.mailsink", description=__doc__)
    parser.add_argument("--dir", type=Path, default=REPO_ROOT / ".state" / "mail")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    args = parser.parse_args()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    sink = controller(args.dir, args.host, args.port)
    sink.start()
    print(f"mail sink on {args.host}:{args.port}, storing messages in {args.dir}", flush=True)
    stop.wait()
    sink.stop()


if __name__ == "__main__":
    main()
