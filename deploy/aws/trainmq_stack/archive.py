"""The deployment zip ``trainmq package lambda`` built, checked before it is uploaded.

A zip built for another Python or CPU deploys fine and then fails every
invocation with an ImportError of pydantic-core; a zip without the handler
fails the same way.  Both are refused here, before anything deploys.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pulumi

from .settings import PipelineSettings, SettingsError

__all__ = ["HANDLER_MODULE", "lambda_archive"]

HANDLER_MODULE = "trainmq/training/intake.py"
_EXTENSION = re.compile(r"\.cpython-(\d)(\d+)-([a-z0-9_]+)-linux-gnu\.so$")


def lambda_archive(path: Path, settings: PipelineSettings) -> pulumi.FileArchive:
    """``path`` as the function's code, once it is known to fit ``settings``."""
    rebuild = (
        f"build it with: trainmq package lambda --runtime {settings.runtime} "
        f"--architecture {settings.architecture} --output {path}"
    )
    if not path.is_file():
        raise SettingsError([f"trainmq:lambdaZip: {path} does not exist; {rebuild}"])
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile) as exc:
        raise SettingsError(
            [f"trainmq:lambdaZip: {path} is not a zip ({exc}); {rebuild}"]
        ) from None
    if HANDLER_MODULE not in names:
        raise SettingsError([f"trainmq:lambdaZip: {path} has no {HANDLER_MODULE}; {rebuild}"])
    machine = "x86_64" if settings.architecture == "x86_64" else "aarch64"
    for name in names:
        match = _EXTENSION.search(name)
        if match is None:
            continue
        built = (int(match.group(1)), int(match.group(2)))
        if built != settings.python or match.group(3) != machine:
            raise SettingsError(
                [
                    f"trainmq:lambdaZip: {name} in {path} is compiled for Python "
                    f"{built[0]}.{built[1]} on {match.group(3)}, not for trainmq:runtime "
                    f"{settings.runtime} on {machine}; {rebuild}"
                ]
            )
    return pulumi.FileArchive(str(path))
