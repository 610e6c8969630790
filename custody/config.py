"""Custody configuration: chains, assets, nodes and keys, from a TOML file.

Keys are split by role on purpose: the watcher side reads only ``xpub`` (watch-only deposit
derivation); the signer side reads ``hot_key_file`` (a file outside the data directory holding
the hot private key), and only `custody.service.Custody` started with ``signer=True`` opens it.
Every key, its default and the extended-key formats per network are documented in
docs/custody.md; docs/custody.example.toml and docs/custody.regtest.toml are samples that
tests/test_custody_config.py loads with `load_config`, so they stay true.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from custody.assets import AssetRegistry, ChainKind, ChainSpec, CustodyAsset
from engine.usererror import UserError


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """How to reach a chain's node and the exchange's keys on it."""

    chain: ChainSpec
    rpc_url: str
    xpub: str = ""
    hot_address: str = ""
    hot_key_file: str = ""
    rpc_user: str = ""
    rpc_password: str = ""
    start_height: int = 0
    fee_rate_sat_vb: int = 20
    bitcoinlib_network: str = ""
    """bitcoinlib network name for key parsing (``litecoin``, ``litecoin_testnet``, ``bitcoin``)."""
    stuck_after_s: int = 120
    chain_id: int = 0
    """Ethereum chain id for signing; 0 = the number after the last ``-`` of the chain name."""


@dataclass(frozen=True, slots=True)
class CustodyConfig:
    store_path: Path
    nodes: dict[str, NodeConfig]
    assets: list[CustodyAsset] = field(default_factory=list)

    def registry(self) -> AssetRegistry:
        return AssetRegistry([n.chain for n in self.nodes.values()], self.assets)


_CHAIN_KEYS = {"name", "kind", "confirmations", "hrp", "bip44_coin"}


def parse_config(data: dict[str, Any], data_dir: Path) -> CustodyConfig:
    nodes: dict[str, NodeConfig] = {}
    for entry in data.get("chain", []):
        spec = ChainSpec(
            name=entry["name"],
            kind=ChainKind(entry["kind"]),
            confirmations=int(entry.get("confirmations", 6)),
            hrp=entry.get("hrp", ""),
            bip44_coin=int(entry.get("bip44_coin", 0)),
        )
        rest = {k: v for k, v in entry.items() if k not in _CHAIN_KEYS}
        nodes[spec.name] = NodeConfig(chain=spec, **rest)
    assets = [CustodyAsset(**a) for a in data.get("asset", [])]
    return CustodyConfig(data_dir / data.get("store", "custody.sqlite"), nodes, assets)


def load_config(path: Path, data_dir: Path, *, flag: str = "--config") -> CustodyConfig:
    """Read and check a custody TOML file; an ordinary mistake in it is one `UserError`
    (``flag``: the option that names the file, for the hint)."""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise UserError(
            f"custody config {path} does not exist",
            hint=f"pass {flag} FILE (docs/custody.md has a sample)",
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"custody config {path} is not valid TOML: {exc}") from None
    try:
        return parse_config(data, data_dir)
    except KeyError as exc:
        raise UserError(f"custody config {path}: missing key {exc}") from None
    except (TypeError, ValueError) as exc:
        raise UserError(f"custody config {path}: {exc}") from None
