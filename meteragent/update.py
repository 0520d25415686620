"""Signed software updates (S14): install only what the utility's release key signed.

``install_update(package, signature, release_public_key, root)``:

1. **Verify first.** The signature is Ed25519 over the package file's bytes (raw 64 bytes, or
   base64 text), checked with the release public key from the provisioning bundle. Nothing
   of the package is parsed before this succeeds.
2. **Unpack safely** into a fresh temporary directory under ``root/versions``: a gzip/plain
   tarball whose members are only regular files and directories with relative paths that stay
   inside the target (no ``..``, no absolute paths, no links or devices), within size and count
   limits; Python's ``data`` extraction filter is applied on top. The tarball must contain a
   ``VERSION`` file (1-16 of ``[A-Za-z0-9._-]``).
3. **Refuse downgrades** and re-installs: the new version must be greater than the current
   one (dotted numbers compared numerically).
4. **Switch atomically:** rename the directory to ``versions/<version>`` and replace the
   ``current`` symlink with ``os.replace`` - a power cut leaves either the old or the new
   version active, never a half-installed one. The service restarts into it.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from meteragent.atomic import fsync_dir, fsync_tree

MAX_PACKAGE_BYTES = 64 * 1024 * 1024
MAX_UNPACKED_BYTES = 256 * 1024 * 1024
MAX_MEMBERS = 10_000
_VERSION = re.compile(r"[A-Za-z0-9._-]{1,16}")


class UpdateError(Exception):
    """The update was refused; nothing was changed."""


@dataclass(frozen=True)
class Installed:
    version: str
    path: Path


def _signature_bytes(raw: bytes) -> bytes:
    if len(raw) == 64:
        return raw
    try:
        sig = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise UpdateError("signature file is neither 64 raw bytes nor base64") from None
    if len(sig) != 64:
        raise UpdateError("signature must be 64 bytes")
    return sig


def verify_package(package: bytes, signature: bytes, release_public_key: bytes | None) -> None:
    """Raise UpdateError unless ``signature`` is the release key's signature of ``package``."""
    if release_public_key is None:
        raise UpdateError("no release key provisioned: updates are refused")
    if len(package) > MAX_PACKAGE_BYTES:
        raise UpdateError("package too large")
    try:
        Ed25519PublicKey.from_public_bytes(release_public_key).verify(
            _signature_bytes(signature), package
        )
    except (InvalidSignature, ValueError):
        raise UpdateError("signature does not verify with the release key") from None


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"[.-]", version))


def current_version(root: Path) -> str | None:
    link = root / "current"
    if not link.is_symlink():
        return None
    return Path(os.readlink(link)).name


def _check_member(member: tarfile.TarInfo, total: int) -> int:
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts or not name.parts:
        raise UpdateError(f"unsafe path in package: {member.name!r}")
    if not (member.isfile() or member.isdir()):
        raise UpdateError(f"package member {member.name!r} is not a regular file or directory")
    total += member.size
    if total > MAX_UNPACKED_BYTES:
        raise UpdateError("package unpacks to too much data")
    return total


def _unpack(package: Path, target: Path) -> None:
    try:
        with tarfile.open(package, "r:*") as tar:
            members = tar.getmembers()
            if len(members) > MAX_MEMBERS:
                raise UpdateError("too many files in package")
            total = 0
            for m in members:
                total = _check_member(m, total)
            tar.extractall(target, members=members, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise UpdateError(f"package is not a valid tarball: {exc}") from None


def install_update(
    package: Path, signature: Path, release_public_key: bytes | None, root: Path
) -> Installed:
    """Verify, unpack and activate ``package``. Raises UpdateError; on error nothing changes."""
    try:
        # Sizes first: a huge file on removable media must not be read into the meter's memory.
        if package.stat().st_size > MAX_PACKAGE_BYTES or signature.stat().st_size > 4096:
            raise UpdateError("package or signature too large")
        data = package.read_bytes()
        signature_bytes = signature.read_bytes()
    except OSError as exc:
        raise UpdateError(f"cannot read the package: {exc}") from None
    verify_package(data, signature_bytes, release_public_key)
    versions = root / "versions"
    versions.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=versions))
    try:
        # Unpack the bytes that were verified, not the file again (it could change meanwhile).
        verified = tmp.with_name(tmp.name + ".tar")
        verified.write_bytes(data)
        try:
            _unpack(verified, tmp)
        finally:
            verified.unlink()
        version_file = tmp / "VERSION"
        if not version_file.is_file():
            raise UpdateError("package has no VERSION file")
        version = version_file.read_text(encoding="ascii", errors="replace").strip()
        if not _VERSION.fullmatch(version):
            raise UpdateError(f"bad version {version!r}")
        current = current_version(root)
        if current is not None and version_key(version) <= version_key(current):
            raise UpdateError(f"version {version} is not newer than the installed {current}")
        final = versions / version
        if final.exists():
            raise UpdateError(f"version {version} is already unpacked")
        fsync_tree(tmp)  # the files are durable before the version can become current
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    link_tmp = root / ".current.tmp"
    if link_tmp.is_symlink() or link_tmp.exists():
        link_tmp.unlink()
    link_tmp.symlink_to(Path("versions") / version)
    fsync_dir(versions)
    os.replace(link_tmp, root / "current")
    fsync_dir(root)
    return Installed(version, final)
