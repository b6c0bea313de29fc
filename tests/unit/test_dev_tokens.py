"""``python -m shared.auth generate``: every role gets a development token, the scraper's is
written alone for Prometheus, and running it again keeps existing tokens (adding new roles)."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from shared.auth import PrincipalKind, TokenRegistry, main


def test_generate_writes_every_role_and_keeps_tokens_on_rerun(tmp_path: Path) -> None:
    out, clear, cred = tmp_path / "tokens.yaml", tmp_path / "dev.yaml", tmp_path / "p.token"
    args = ["generate", "--out", str(out), "--clear-out", str(clear)]
    assert main([*args, "--metrics-credential-out", str(cred)]) == 0
    tokens = yaml.safe_load(clear.read_text())
    assert {"ops", "analyst", "prometheus", "halmtorv", "sanitation-city"} <= set(tokens)
    assert cred.read_text() == tokens["prometheus"]
    assert oct(clear.stat().st_mode & 0o777) == "0o600"
    registry = TokenRegistry.from_file(out)
    kinds = {p: registry.authenticate(t) for p, t in tokens.items()}
    assert kinds["ops"] is not None and kinds["ops"].kind is PrincipalKind.OPS
    assert kinds["analyst"] is not None and kinds["analyst"].kind is PrincipalKind.ANALYST
    assert kinds["prometheus"] is not None and kinds["prometheus"].kind is PrincipalKind.METRICS
    assert str(tokens["ops"]) not in out.read_text()  # digests only

    # an older checkout: facilities only. A rerun keeps their tokens and adds the read roles.
    old = {k: v for k, v in tokens.items() if k not in ("ops", "analyst", "prometheus")}
    clear.write_text(yaml.safe_dump(old))
    clear.chmod(0o644)  # e.g. restored from a backup: made owner-only again
    assert main(args) == 0
    assert oct(clear.stat().st_mode & 0o777) == "0o600"
    again = yaml.safe_load(clear.read_text())
    assert {k: again[k] for k in old} == old
    assert {"ops", "analyst", "prometheus"} <= set(again) and again["ops"] != tokens["ops"]


def test_force_gives_every_principal_a_new_token_even_on_a_fresh_checkout(tmp_path: Path) -> None:
    out, clear, cred = tmp_path / "tokens.yaml", tmp_path / "dev.yaml", tmp_path / "p.token"
    args = ["generate", "--out", str(out), "--clear-out", str(clear), "--force"]
    assert main([*args, "--metrics-credential-out", str(cred)]) == 0  # nothing to remove yet
    first = yaml.safe_load(clear.read_text())
    assert oct(cred.stat().st_mode & 0o777) == "0o600"  # the scraper's token: owner only
    assert main(args) == 0
    second = yaml.safe_load(clear.read_text())
    assert set(second) == set(first)
    assert all(second[p] != first[p] for p in first)  # every token replaced
    registry = TokenRegistry.from_file(out)
    assert all(registry.authenticate(first[p]) is None for p in first)  # the old ones are dead


def test_rewritten_files_hold_only_the_new_content_and_the_digests_stay_readable(
    tmp_path: Path,
) -> None:
    out, clear = tmp_path / "tokens.yaml", tmp_path / "dev.yaml"
    out.write_text("# an older, longer tokens file\n" + "x: y\n" * 2000)
    old_umask = os.umask(0o022)
    try:
        assert main(["generate", "--out", str(out), "--clear-out", str(clear)]) == 0
        assert "x: y" not in out.read_text()  # truncated, not overwritten in place
        tokens = yaml.safe_load(clear.read_text())
        assert TokenRegistry.from_file(out).authenticate(tokens["ops"]) is not None
        fresh = tmp_path / "fresh.yaml"
        assert main(["generate", "--out", str(fresh), "--clear-out", str(clear)]) == 0
    finally:
        os.umask(old_umask)
    assert oct(fresh.stat().st_mode & 0o777) == "0o644"  # digests only: readable by services
