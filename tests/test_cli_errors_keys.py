"""Ordinary mistakes at the ``kootabase`` command line (issue 12): one line on stderr, no
traceback, a non-zero exit; every case runs the real command in a subprocess, as a user would.
Here: account keys and the master key.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.cli_support import assert_one_line, run_cli

# ---- accounts: keys and the master key ---------------------------------------------------------


def _ed25519_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    public = Ed25519PrivateKey.generate().public_key()
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def test_ed25519_public_key_as_pem_text_or_file(copy_dir: Path, tmp_path: Path) -> None:
    def create(key: str) -> subprocess.CompletedProcess[str]:
        return run_cli(
            "accounts",
            "create",
            "--data-dir",
            str(copy_dir),
            "--master-key-file",
            str(tmp_path / "master.key"),
            "--ed25519-public-key",
            key,
        )

    as_text = create(_ed25519_pem())
    assert as_text.returncode == 0, as_text.stderr
    assert '"kind": "ed25519"' in as_text.stdout
    pem_file = tmp_path / "key.pem"
    pem_file.write_text(_ed25519_pem())
    as_file = create(str(pem_file))
    assert as_file.returncode == 0, as_file.stderr
    assert_one_line(create(str(tmp_path / "nope.pem")), "neither a PEM public key nor a file")
    assert_one_line(create("-----BEGIN PUBLIC KEY-----\nxx\n"), "not a PEM public key")


def test_master_key_that_does_not_decrypt_is_refused(copy_dir: Path, tmp_path: Path) -> None:
    right = tmp_path / "right.key"
    created = run_cli(
        "accounts", "create", "--data-dir", str(copy_dir), "--master-key-file", str(right)
    )
    assert created.returncode == 0, created.stderr
    wrong = tmp_path / "wrong.key"
    wrong.write_text("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=\n")  # 32 other bytes
    assert_one_line(
        run_cli("accounts", "list", "--data-dir", str(copy_dir), "--master-key-file", str(wrong)),
        "does not decrypt",
        str(wrong),
    )
    missing = tmp_path / "missing.key"
    assert_one_line(
        run_cli("accounts", "list", "--data-dir", str(copy_dir), "--master-key-file", str(missing)),
        "does not exist",
        "never generated",
    )
    assert not missing.exists()  # no new key silently replaces the one that encrypted them
    listed = run_cli(
        "accounts", "list", "--data-dir", str(copy_dir), "--master-key-file", str(right)
    )
    assert listed.returncode == 0, listed.stderr
