#!/usr/bin/env python3
"""Write docs/configuration.md from the config classes (wtpipe.cli.reference)."""

from __future__ import annotations

import os

from wtpipe.atomic import write_bytes_atomic
from wtpipe.cli.reference import markdown

PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "configuration.md")

if __name__ == "__main__":
    write_bytes_atomic(PAGE, markdown().encode(), mode=0o644)
    print(f"wrote {os.path.normpath(PAGE)}")
