"""Fill deploy/nginx.conf's markers: ``python deploy/render.py LISTEN_PORT BACKEND_PORT...``.

Prints the configuration; tests and the benchmark render it the same way.
"""

from __future__ import annotations

import sys
from pathlib import Path

TEMPLATE = Path(__file__).with_name("nginx.conf")


def render(listen: int, backends: list[int]) -> str:
    upstreams = "\n        ".join(
        f"server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;" for p in backends
    )
    return TEMPLATE.read_text().replace("@@UPSTREAMS@@", upstreams).replace("@@PORT@@", str(listen))


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: render.py LISTEN_PORT BACKEND_PORT...")
    sys.stdout.write(render(int(sys.argv[1]), [int(p) for p in sys.argv[2:]]))
