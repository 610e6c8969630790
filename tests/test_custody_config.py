"""The sample custody configurations in docs/ load with the real loader and mean what they say.

Each sample is read by `custody.config.load_config` and given to a real `Custody` with the
signer on: every xpub must parse with its ``bitcoinlib_network`` and derive a deposit address of
its chain, and every ``hot_address`` must be the address of a hot key written in the file format
docs/custody.md documents. Every key the loader reads must appear in the mainnet sample and in
docs/custody.md. No chain node is contacted (nothing here needs one).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from bitcoinlib.keys import HDKey
from eth_utils import to_checksum_address

from custody.assets import ChainKind, ChainSpec, CustodyAsset
from custody.config import NodeConfig, load_config
from custody.service import Custody
from engine.schema import CreateAsset
from engine.service import DEMO_COMMANDS

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SAMPLES = ("custody.example.toml", "custody.regtest.toml")
SAMPLE_SEED = hashlib.sha256(b"kootabase sample custody config: public, never fund").digest()
"""The public seed of the samples' keys (the samples say: never fund them)."""


def _hd(network: str, path: list[int], witness_type: str = "legacy") -> HDKey:
    key = HDKey.from_seed(SAMPLE_SEED, network=network, witness_type=witness_type)
    for index in path:
        key = key.child_private(abs(index), hardened=index < 0)
    return key


def _hot_key_text(chain: str) -> str:
    """Each chain's hot key in one of the documented file formats (docs/custody.md)."""
    if chain.startswith("eth-"):
        return "0x" + _hd("bitcoin", [-44, -60, -1, 0, 0]).private_hex + "\n"  # hex key
    if chain == "btc-main":  # an extended private key
        return _hd("bitcoin", [-84, -0, -1, 0, 0], "segwit").wif_private() + "\n"
    if chain == "ltc-main":  # a WIF private key
        return _hd("litecoin", [-84, -2, -1, 0, 0], "segwit").wif_key() + "\n"
    assert chain == "ltc-regtest", chain
    return _hd("litecoin_testnet", [-84, -1, -1, 0, 0]).wif_private() + "\n"


def _with_hot_keys(sample: Path, tmp_path: Path) -> Path:
    """The sample with its hot_key_file paths pointed at key files written under tmp_path."""
    text = sample.read_text()
    for name in tomllib.loads(text)["chain"]:
        chain = name["name"]
        key_file = tmp_path / f"{chain}.key"
        key_file.write_text(_hot_key_text(chain))
        text = text.replace(
            f'hot_key_file = "{name["hot_key_file"]}"', f'hot_key_file = "{key_file}"', 1
        )
    out = tmp_path / sample.name
    out.write_text(text)
    return out


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_loads_derives_and_signs(name: str, tmp_path: Path) -> None:
    config = load_config(_with_hot_keys(DOCS / name, tmp_path), tmp_path)
    assert config.store_path == tmp_path / "custody.sqlite"
    registry = config.registry()

    async def no_submit(command: Any) -> list[Any]:
        raise AssertionError("nothing is journaled here")

    async def check() -> None:
        custody = Custody(config, no_submit, signer=True)
        try:
            for chain, node in config.nodes.items():
                assert custody.signers[chain].address == node.hot_address, chain
            for asset in registry.assets.values():
                spec = registry.chains[asset.chain]
                address = custody.deposit_address(7, asset.asset_id).address
                if spec.kind is ChainKind.ETHEREUM:
                    assert address == to_checksum_address(address)
                else:
                    assert address.startswith(spec.hrp + "1q"), address
                if asset.contract:
                    assert asset.contract == to_checksum_address(asset.contract)
        finally:
            await custody.close()

    asyncio.run(check())


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_assets_are_the_engines(name: str, tmp_path: Path) -> None:
    """asset_id, symbol and engine_decimals agree with the engine's assets (serve's demo)."""
    engine = {
        c.asset_id: (c.symbol, c.decimals) for c in DEMO_COMMANDS if isinstance(c, CreateAsset)
    }
    for asset in load_config(DOCS / name, tmp_path).assets:
        assert engine[asset.asset_id] == (asset.symbol, asset.engine_decimals), asset


def _fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def test_every_key_is_in_the_sample_and_documented() -> None:
    chain_keys = _fields(ChainSpec) | (_fields(NodeConfig) - {"chain"})
    asset_keys = _fields(CustodyAsset)
    data = tomllib.loads((DOCS / "custody.example.toml").read_text())
    assert set(data) == {"store", "chain", "asset"}
    assert {k for c in data["chain"] for k in c} == chain_keys
    assert {k for a in data["asset"] for k in a} == asset_keys
    first_cells = re.findall(r"^\| ([^|]+) \|", (DOCS / "custody.md").read_text(), re.M)
    documented = {key for cell in first_cells for key in re.findall(r"`(\w+)`", cell)}
    missing = ({"store"} | chain_keys | asset_keys) - documented
    assert not missing, f"keys without a row in docs/custody.md: {sorted(missing)}"


def test_custody_float_is_recorded_for_reconciliation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`kootabase custody float`, as docs/custody.md shows it, lands in the store as the
    reconciliation's "operator float" line; a bad amount or asset records nothing."""
    from custody.reconcile import explain
    from custody.store import CustodyStore
    from gateway.cli import main

    config_file = tmp_path / "custody.toml"
    config_file.write_text((DOCS / "custody.regtest.toml").read_text())
    config = load_config(config_file, tmp_path)
    CustodyStore(config.store_path).close()  # custody has run in this data directory
    base = ["custody", "float", "--data-dir", str(tmp_path), "--config", str(config_file)]
    assert main([*base, "--asset", "LTC", "--amount", "2.5", "--note", "top-up"]) == 0
    assert main([*base, "--asset", "ltc", "--amount", "-0.25", "--note", "sweep"]) == 0
    assert "LTC" in capsys.readouterr().out
    for bad in (
        ["--asset", "DOGE", "--amount", "1"],
        ["--asset", "LTC", "--amount", "1e3"],
        ["--asset", "LTC", "--amount", "0.000000001"],
        ["--asset", "LTC", "--amount", "0"],
    ):
        assert main([*base, *bad, "--note", "x"]) == 1
        err = capsys.readouterr().err
        assert err.startswith("kootabase custody float: ") and err.count("\n") == 1, err
    typo = [
        "custody",
        "float",
        "--data-dir",
        str(tmp_path / "typo"),
        "--config",
        str(config_file),
        "--asset",
        "LTC",
        "--amount",
        "1",
        "--note",
        "x",
    ]
    assert main(typo) == 1
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "typo").exists()
    store = CustodyStore(config.store_path)
    try:
        ltc = next(a for a in config.assets if a.symbol == "LTC")
        assert store.treasury(ltc.asset_id) == 225_000_000
        assert ("operator float in hot wallets", 225_000_000) in explain(ltc, store)
    finally:
        store.close()
