"""The AWS Lambda deployment zip: trainmq plus what its intake stage imports, reproducibly.

What goes in:

* the installed ``trainmq`` package (every file of it but bytecode caches);
* the distributions :data:`LAMBDA_REQUIREMENTS` name and everything they require
  (resolved from the installed metadata, markers evaluated for the *target*
  Lambda runtime, extras never followed), copied from the installed files;
* boto3 and botocore too: the runtime's own boto3 lags the releases, and the
  store's create-only puts need a botocore that knows ``IfNoneMatch``.  Bundling
  them pins the version the zip was tested with.

The training extras (torch, numpy, tokenizers, matplotlib) are never reached;
:data:`EXCLUDED` makes that a checked promise, not a hope.

Compiled extensions (pydantic-core is one) are only correct for the Python
version and CPU they were built for.  An installed extension that fits the
target (``cpython-312-x86_64-linux-gnu``, or a stable-ABI ``abi3`` one) is
copied; one that does not is taken from a wheel of *the same version* in
``wheels``; when that folder has none, the builder runs ``pip download`` for the
target itself (see :mod:`.fetch`) into ``wheels`` (kept for the next build) or a
temporary folder.  With ``fetch=False`` nothing reaches the network and the
build stops with the command that fetches the wheel.

Reproducible: entries sorted by name, every timestamp 1980-01-01 00:00, every
mode 0644, no directories and no ``__pycache__``: the same inputs give the same
bytes (so ``pulumi up`` sees no change when nothing changed).
"""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import os
import re
import subprocess
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

from ..errors import ConfigurationError
from .fetch import Downloader, download_command, pip_download

__all__ = [
    "EXCLUDED",
    "FIXED_TIME",
    "LAMBDA_REQUIREMENTS",
    "BuildReport",
    "PackageError",
    "Target",
    "build",
    "download_hint",
    "resolve",
]

#: Top-level distributions the Lambda stage imports besides trainmq itself.
LAMBDA_REQUIREMENTS = ("pydantic>=2.6", "boto3>=1.35")
#: Distributions that must never be in the zip (the ``train`` extra and its kin).
EXCLUDED = frozenset({"torch", "numpy", "tokenizers", "matplotlib", "triton", "pillow"})
#: The timestamp of every entry (the earliest a zip can hold).
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_FILE_MODE = 0o100644 << 16  # a regular file, rw-r--r--
_UNIX = 3  # ZipInfo.create_system
#: glibc of the Amazon Linux each runtime runs on (for manylinux wheel tags).
_GLIBC = {(3, 11): (2, 26)}
_GLIBC_DEFAULT = (2, 34)  # python3.12 and later: Amazon Linux 2023
_RUNTIME = re.compile(r"^python3\.(\d+)$")
_EXTENSION = re.compile(r"\.(cpython-(\d)(\d+)-([a-z0-9_]+)-linux-gnu|abi3)\.so$")
_WHEEL = re.compile(
    r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-(?P<py>[^-]+)-(?P<abi>[^-]+)-(?P<plat>[^-]+)\.whl$"
)
_LICENSE = re.compile(r"^(licenses?/|LICEN[CS]E|COPYING|NOTICE|AUTHORS)", re.IGNORECASE)


class PackageError(ConfigurationError):
    """The zip cannot be built as asked (the message says what to change)."""


def normalize(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Target:
    """The Lambda runtime and architecture the zip is for."""

    python: tuple[int, int]
    architecture: Literal["x86_64", "arm64"]

    @classmethod
    def parse(cls, runtime: str, architecture: str) -> Target:
        match = _RUNTIME.match(runtime)
        if not match or int(match.group(1)) < 11:
            raise PackageError(
                f"runtime {runtime!r} is not a Lambda Python runtime trainmq runs on "
                "(python3.11 or newer, e.g. python3.12)"
            )
        if architecture == "x86_64":
            return cls((3, int(match.group(1))), "x86_64")
        if architecture == "arm64":
            return cls((3, int(match.group(1))), "arm64")
        raise PackageError(f"architecture {architecture!r} is not x86_64 or arm64")

    @property
    def runtime(self) -> str:
        return f"python{self.python[0]}.{self.python[1]}"

    @property
    def machine(self) -> str:
        return "x86_64" if self.architecture == "x86_64" else "aarch64"

    def marker_environment(self) -> dict[str, str]:
        version = f"{self.python[0]}.{self.python[1]}"
        return {
            "python_version": version,
            "python_full_version": f"{version}.0",
            "implementation_name": "cpython",
            "platform_python_implementation": "CPython",
            "os_name": "posix",
            "sys_platform": "linux",
            "platform_system": "Linux",
            "platform_machine": self.machine,
            "extra": "",
        }

    def fits_extension(self, filename: str) -> bool:
        """Whether a compiled module (``*.so``) loads on this runtime."""
        match = _EXTENSION.search(filename)
        if match is None:
            return False
        if match.group(1) == "abi3":
            return True
        version = (int(match.group(2)), int(match.group(3)))
        return version == self.python and match.group(4) == self.machine

    def fits_wheel(self, filename: str) -> bool:
        """Whether a wheel's tags (``cp312-cp312-manylinux_2_17_x86_64...``) fit."""
        match = _WHEEL.match(filename)
        if match is None:
            return False
        cp = f"cp{self.python[0]}{self.python[1]}"
        pythons = match.group("py").split(".")
        abis = match.group("abi").split(".")
        platforms = match.group("plat").split(".")
        stable = [v for v in map(_cp_version, pythons) if v is not None and v <= self.python]
        python_ok = (cp in pythons and cp in abis) or ("abi3" in abis and bool(stable))
        return python_ok and any(self._fits_platform(p) for p in platforms)

    def _fits_platform(self, platform: str) -> bool:
        legacy = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
        glibc = _GLIBC.get(self.python, _GLIBC_DEFAULT)
        for prefix, version in legacy.items():
            if platform == f"{prefix}_{self.machine}":
                return version <= glibc
        match = re.fullmatch(rf"manylinux_(\d+)_(\d+)_{self.machine}", platform)
        return match is not None and (int(match.group(1)), int(match.group(2))) <= glibc


def _cp_version(tag: str) -> tuple[int, int] | None:
    match = re.fullmatch(r"cp(\d)(\d+)", tag)
    return (int(match.group(1)), int(match.group(2))) if match else None


# -- what goes in ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    """One distribution in the zip and where its files come from."""

    name: str
    version: str
    origin: str  # "installed" or the wheel's file name


@dataclass
class _Plan:
    files: dict[str, Callable[[], bytes]] = field(default_factory=dict)
    sources: list[Source] = field(default_factory=list)

    def add(self, archive_name: str, read: Callable[[], bytes], owner: str) -> None:
        if archive_name in self.files:
            raise PackageError(f"{archive_name} is in two distributions (the second: {owner})")
        self.files[archive_name] = read


def resolve(requirements: Iterable[str], target: Target) -> list[metadata.Distribution]:
    """The installed distributions ``requirements`` need on ``target``, sorted by name."""
    from packaging.requirements import Requirement

    found: dict[str, metadata.Distribution] = {}
    pending = [Requirement(text) for text in requirements]
    environment = target.marker_environment()
    while pending:
        requirement = pending.pop()
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue
        name = normalize(requirement.name)
        if name in EXCLUDED:
            raise PackageError(f"{name} must not be in the Lambda zip (it is a training extra)")
        if name in found:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise PackageError(
                f"{requirement.name} is not installed; install trainmq[deploy] to package"
            ) from None
        if not requirement.specifier.contains(dist.version, prereleases=True):
            raise PackageError(
                f"{requirement.name} {dist.version} is installed but {requirement} is required"
            )
        found[name] = dist
        pending += [Requirement(text) for text in dist.requires or []]
    return [found[name] for name in sorted(found)]


def _package_files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            yield path


def _metadata_name(dist: metadata.Distribution) -> str:
    return f"{dist.name.replace('-', '_')}-{dist.version}.dist-info"


def _add_trainmq(plan: _Plan) -> None:
    import trainmq

    root = Path(trainmq.__file__).parent
    for path in _package_files(root):
        name = "trainmq/" + path.relative_to(root).as_posix()
        plan.add(name, path.read_bytes, "trainmq")
    dist = metadata.distribution("trainmq")
    text = dist.read_text("METADATA") or ""
    plan.add(f"{_metadata_name(dist)}/METADATA", text.encode, "trainmq")
    plan.sources.append(Source("trainmq", dist.version, "installed"))


def _installed_files(dist: metadata.Distribution) -> list[tuple[str, Path]]:
    out = []
    info_dir = None
    for entry in dist.files or []:
        name = entry.as_posix()
        if name.startswith(("../", "/")) or "__pycache__" in entry.parts or name.endswith(".pyc"):
            continue
        top = entry.parts[0]
        if top.endswith(".dist-info"):
            info_dir = top
            if name.endswith("/METADATA") or _LICENSE.match("/".join(entry.parts[1:])):
                out.append((f"{_metadata_name(dist)}/{'/'.join(entry.parts[1:])}", entry))
            continue
        if top.endswith(".data"):
            continue  # scripts and headers: nothing Lambda imports
        out.append((name, entry))
    if info_dir is None:
        raise PackageError(f"{dist.name} {dist.version} is installed without a file list")
    return [(name, Path(str(dist.locate_file(entry)))) for name, entry in out]


def _add_distribution(
    plan: _Plan,
    dist: metadata.Distribution,
    target: Target,
    wheels: Path | None,
    fetch: _Fetch | None,
) -> None:
    files = _installed_files(dist)
    misfits = [
        name
        for name, _ in files
        if name.endswith((".so", ".pyd")) and not target.fits_extension(name)
    ]
    if not misfits:
        for name, path in files:
            plan.add(name, path.read_bytes, dist.name)
        plan.sources.append(Source(normalize(dist.name), dist.version, "installed"))
        return
    wheel = _find_wheel(dist, target, wheels, fetch)
    with zipfile.ZipFile(wheel) as archive:
        for info in sorted(archive.infolist(), key=lambda i: i.filename):
            name = info.filename
            parts = name.split("/")
            if info.is_dir() or parts[0].endswith(".data") or "__pycache__" in parts:
                continue
            if parts[0].endswith(".dist-info"):
                if not (parts[-1] == "METADATA" or _LICENSE.match("/".join(parts[1:]))):
                    continue
                name = f"{_metadata_name(dist)}/{'/'.join(parts[1:])}"
            plan.add(name, _reader(wheel, info.filename), wheel.name)
    plan.sources.append(Source(normalize(dist.name), dist.version, wheel.name))


def _reader(wheel: Path, member: str) -> Callable[[], bytes]:
    def read() -> bytes:
        with zipfile.ZipFile(wheel) as archive:
            return archive.read(member)

    return read


def _fitting_wheel(name: str, version: str, target: Target, folder: Path | None) -> Path | None:
    for wheel in sorted(folder.glob("*.whl")) if folder is not None else []:
        match = _WHEEL.match(wheel.name)
        if (
            match
            and normalize(match.group("name")) == name
            and match.group("version") == version
            and target.fits_wheel(wheel.name)
        ):
            return wheel
    return None


def _find_wheel(
    dist: metadata.Distribution, target: Target, wheels: Path | None, fetch: _Fetch | None
) -> Path:
    name, version = normalize(dist.name), dist.version
    wheel = _fitting_wheel(name, version, target, wheels)
    if wheel is not None:
        return wheel
    problem = ""
    if fetch is not None:
        try:
            fetch.download(dist.name, version, target, fetch.folder)
        except (OSError, subprocess.SubprocessError) as exc:
            output = getattr(exc, "stderr", None) or str(exc)
            problem = f" (pip download failed: {output.strip().splitlines()[-1:]})"
        wheel = _fitting_wheel(name, version, target, fetch.folder)
        if wheel is not None:
            return wheel
    where = f"in {wheels}" if wheels is not None else "(no --wheels folder given)"
    raise PackageError(
        f"{dist.name} {version} is installed compiled for another Python or CPU and no wheel "
        f"for {target.runtime} {target.architecture} was found {where}{problem}; "
        f"fetch one with: {download_hint(dist.name, version, target)}"
    )


@dataclass(frozen=True)
class _Fetch:
    """Where fetched wheels go, and how they are fetched."""

    folder: Path
    download: Downloader


def download_hint(name: str, version: str, target: Target) -> str:
    """The ``pip download`` command that fetches ``name==version`` for ``target``."""
    return " ".join(
        f"'{word}'" if "=" in word and not word.startswith("-") else word
        for word in download_command(name, version, target, "wheels")
    )


# -- the zip --------------------------------------------------------------------------------
@dataclass(frozen=True)
class BuildReport:
    path: Path
    sha256: str
    size: int
    entries: int
    sources: tuple[Source, ...]


def build(
    output: str | os.PathLike[str],
    *,
    runtime: str = "python3.12",
    architecture: str = "x86_64",
    wheels: str | os.PathLike[str] | None = None,
    fetch: bool = True,
    downloader: Downloader = pip_download,
) -> BuildReport:
    """Write the deployment zip to ``output`` (atomically) and say what is in it.

    ``fetch``: download a compiled dependency's wheel for the target with pip when
    neither the installed build nor ``wheels`` fits (into ``wheels`` when given).
    """
    target = Target.parse(runtime, architecture)
    wheel_dir = Path(wheels) if wheels is not None else None
    if wheel_dir is not None and not wheel_dir.is_dir():
        raise PackageError(f"the wheels folder {wheel_dir} does not exist")
    with tempfile.TemporaryDirectory(prefix="trainmq-wheels-") as scratch:
        folder = wheel_dir if wheel_dir is not None else Path(scratch)
        plan = _Plan()
        _add_trainmq(plan)
        for dist in resolve(LAMBDA_REQUIREMENTS, target):
            _add_distribution(
                plan, dist, target, wheel_dir, _Fetch(folder, downloader) if fetch else None
            )
        return _write_zip(Path(output), plan)


def _write_zip(path: Path, plan: _Plan) -> BuildReport:
    """The zip at ``path``, written atomically, mode 0644 like any file a user shares."""
    if path.is_dir():
        raise PackageError(f"the output {path} is a directory; name the zip file")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, scratch = tempfile.mkstemp(prefix=".lambda-", suffix=".zip", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as stream:
            _write(stream, plan.files)
        os.chmod(scratch, 0o644)  # mkstemp made it 0600
        os.replace(scratch, path)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise
    data = path.read_bytes()
    return BuildReport(
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        entries=len(plan.files),
        sources=tuple(sorted(plan.sources, key=lambda s: s.name)),
    )


def _write(stream: IO[bytes], files: dict[str, Callable[[], bytes]]) -> None:
    with zipfile.ZipFile(stream, "w") as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.external_attr = _FILE_MODE
            info.create_system = _UNIX
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, files[name](), compresslevel=9)
