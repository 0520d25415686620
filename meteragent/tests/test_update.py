"""Signed updates: verified before anything is unpacked; unsafe or unsigned packages refused."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from meteragent.keyfile import public_bytes
from meteragent.update import UpdateError, current_version, install_update

RELEASE = Ed25519PrivateKey.generate()
RELEASE_PUB = public_bytes(RELEASE)


def make_tar(files: dict[str, bytes], *, extra: list[tarfile.TarInfo] = ()) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info)
    return buf.getvalue()


def write_pkg(tmp_path: Path, data: bytes, key=RELEASE, name="pkg") -> tuple[Path, Path]:
    pkg = tmp_path / f"{name}.tar.gz"
    sig = tmp_path / f"{name}.sig"
    pkg.write_bytes(data)
    sig.write_bytes(key.sign(data))
    return pkg, sig


def test_signed_package_is_installed_and_activated(tmp_path) -> None:
    root = tmp_path / "opt"
    pkg, sig = write_pkg(tmp_path, make_tar({"VERSION": b"1.2.0\n", "bin/agent": b"new"}))
    installed = install_update(pkg, sig, RELEASE_PUB, root)
    assert installed.version == "1.2.0"
    assert (root / "current" / "bin" / "agent").read_bytes() == b"new"
    assert current_version(root) == "1.2.0"
    # A newer one switches the link; base64 signatures are accepted too.
    import base64

    pkg2, sig2 = write_pkg(tmp_path, make_tar({"VERSION": b"1.10.0", "bin/agent": b"newer"}),
                           name="two")  # fmt: skip
    sig2.write_bytes(base64.b64encode(sig2.read_bytes()) + b"\n")
    install_update(pkg2, sig2, RELEASE_PUB, root)
    assert (root / "current" / "bin" / "agent").read_bytes() == b"newer"
    assert (root / "versions" / "1.2.0").is_dir()  # the old one stays for a rollback


@pytest.mark.parametrize("case", ["other key", "flipped byte", "no release key", "bad sig file"])
def test_unsigned_or_altered_packages_are_refused_before_unpacking(tmp_path, case) -> None:
    root = tmp_path / "opt"
    data = make_tar({"VERSION": b"2.0", "x": b"payload"})
    pkg, sig = write_pkg(tmp_path, data, key=Ed25519PrivateKey.generate() if case == "other key"
                         else RELEASE)  # fmt: skip
    if case == "flipped byte":
        changed = bytearray(data)
        changed[len(changed) // 2] ^= 1
        pkg.write_bytes(bytes(changed))
    if case == "bad sig file":
        sig.write_bytes(b"not a signature")
    with pytest.raises(UpdateError):
        install_update(pkg, sig, None if case == "no release key" else RELEASE_PUB, root)
    assert not (root / "current").exists()
    assert not (root / "versions").exists() or not any((root / "versions").iterdir())


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


@pytest.mark.parametrize(
    "extra",
    [
        [_member("../escape")],
        [_member("/etc/passwd")],
        [_member("a/../../escape")],
        [_member("link", tarfile.SYMTYPE, "/etc/passwd")],
        [_member("hard", tarfile.LNKTYPE, "VERSION")],
        [_member("dev", tarfile.CHRTYPE)],
        [_member("fifo", tarfile.FIFOTYPE)],
    ],
)
def test_signed_but_unsafe_packages_are_refused(tmp_path, extra) -> None:
    root = tmp_path / "opt"
    pkg, sig = write_pkg(tmp_path, make_tar({"VERSION": b"3.0"}, extra=extra))
    with pytest.raises(UpdateError):
        install_update(pkg, sig, RELEASE_PUB, root)
    assert not (tmp_path / "escape").exists()
    assert not (root / "current").exists()
    assert not any((root / "versions").iterdir())  # the temporary directory was removed


def test_downgrade_and_missing_version_are_refused(tmp_path) -> None:
    root = tmp_path / "opt"
    install_update(*write_pkg(tmp_path, make_tar({"VERSION": b"2.0"}), name="a"), RELEASE_PUB, root)
    for name, files in [("b", {"VERSION": b"1.9"}), ("c", {"VERSION": b"2.0"}),
                        ("d", {"other": b""}), ("e", {"VERSION": b"../x"})]:  # fmt: skip
        with pytest.raises(UpdateError):
            install_update(*write_pkg(tmp_path, make_tar(files), name=name), RELEASE_PUB, root)
    assert current_version(root) == "2.0"


def test_garbage_signed_is_refused_cleanly(tmp_path) -> None:
    pkg, sig = write_pkg(tmp_path, b"not a tarball at all")
    with pytest.raises(UpdateError, match="tarball"):
        install_update(pkg, sig, RELEASE_PUB, tmp_path / "opt")


def test_an_oversized_package_is_refused_before_it_is_read(tmp_path) -> None:
    from meteragent import update

    big = tmp_path / "big.tar.gz"
    with big.open("wb") as out:
        out.truncate(update.MAX_PACKAGE_BYTES + 1)  # sparse: costs no disk
    sig = tmp_path / "big.sig"
    sig.write_bytes(b"x" * 64)
    with pytest.raises(update.UpdateError, match="too large"):
        update.install_update(big, sig, bytes(32), tmp_path / "root")
