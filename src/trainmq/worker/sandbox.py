"""Entry point of a handler process (``python -m trainmq.worker.sandbox``); see ``child``.

A module of its own because the package never imports it: running a module
that the package already imported would make Python warn.
"""

from __future__ import annotations

import sys

from .child import main

if __name__ == "__main__":
    sys.exit(main(sys.argv))
