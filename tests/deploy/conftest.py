"""The Pulumi program's package (``deploy/aws/trainmq_stack``) is imported from its folder."""

from __future__ import annotations

import sys
from pathlib import Path

DEPLOY_AWS = Path(__file__).resolve().parents[2] / "deploy" / "aws"
if str(DEPLOY_AWS) not in sys.path:
    sys.path.insert(0, str(DEPLOY_AWS))
