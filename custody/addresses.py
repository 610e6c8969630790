"""Deposit addresses derived watch-only from an extended public key, and address validation.

The watcher holds no private key: it is given the account-level xpub (BIP84 ``m/84'/c'/0'``
for the Bitcoin family, BIP44 ``m/44'/60'/0'`` for Ethereum) and derives the external chain
``.../0/i`` publicly. Index ``i`` is allocated once per (chain, exchange account) and persisted,
so an account keeps its address and the watcher knows every address it must watch. The ERC-20
tokens of a chain share the account's Ethereum address (as every exchange does).
"""

from __future__ import annotations

import re

from bitcoinlib.encoding import EncodingError, addr_bech32_to_pubkeyhash, hash160
from bitcoinlib.encoding import pubkeyhash_to_addr_bech32 as _bech32
from bitcoinlib.keys import HDKey
from eth_utils import keccak, to_checksum_address

from custody.assets import ChainKind, ChainSpec
from custody.store import CustodyStore

_ETH_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


class InvalidAddress(ValueError):
    """Malformed, wrong-chain or unsupported destination address; the message says which."""


def eth_address_of(key: HDKey) -> str:
    """EIP-55 address of a (public) key: the last 20 bytes of keccak(uncompressed point)."""
    return to_checksum_address(keccak(key.public_uncompressed_byte[1:])[-20:])


def p2wpkh_script(key: HDKey) -> str:
    return "0014" + hash160(key.public_byte).hex()


def bech32_address(script_hex: str, hrp: str) -> str:
    script = bytes.fromhex(script_hex)
    witver = 0 if script[0] == 0 else script[0] - 0x50
    return _bech32(
        script[2:], prefix=hrp, witver=witver, checksum_xor=1 if witver == 0 else 0x2BC830A3
    )


class AddressBook:
    """Allocates and remembers deposit addresses; validates withdrawal destinations."""

    def __init__(
        self,
        store: CustodyStore,
        chains: dict[str, ChainSpec],
        xpubs: dict[str, str],
        *,
        bitcoinlib_network: dict[str, str] | None = None,
    ) -> None:
        self.store = store
        self.chains = chains
        self._roots: dict[str, HDKey] = {}
        networks = bitcoinlib_network or {}
        for name, xpub in xpubs.items():
            spec = chains[name]
            network = networks.get(
                name, "bitcoin" if spec.kind is ChainKind.ETHEREUM else "litecoin_testnet"
            )
            root = HDKey(xpub, network=network)
            if root.is_private:
                raise ValueError(
                    f"{name}: the watcher must be given a public key, not a private one"
                )
            self._roots[name] = root.child_public(0)  # the external (receive) chain

    def derive(self, chain: str, index: int) -> tuple[str, str]:
        """(address, watch key) at ``index``: the watch key is the scriptPubKey hex (Bitcoin
        family) or the lower-case address (Ethereum), what a scanner sees in a block."""
        key = self._roots[chain].child_public(index)
        spec = self.chains[chain]
        if spec.kind is ChainKind.ETHEREUM:
            address = eth_address_of(key)
            return address, address.lower()
        script = p2wpkh_script(key)
        return bech32_address(script, spec.hrp), script

    def deposit_address(self, chain: str, account_id: int) -> str:
        """The account's deposit address on ``chain``, allocated on first request."""
        if chain not in self._roots:
            raise KeyError(f"no deposit key configured for chain {chain!r}")
        found = self.store.address_of(chain, account_id)
        if found is not None:
            return found[1]
        index = self.store.next_address_index(chain)
        address, watch = self.derive(chain, index)
        self.store.add_address(chain, account_id, index, address, watch)
        return address


def validate_address(spec: ChainSpec, address: str) -> str:
    """Normalised destination for ``spec``'s chain, or `InvalidAddress` with the reason."""
    address = address.strip()
    if spec.kind is ChainKind.ETHEREUM:
        if not _ETH_ADDRESS.match(address):
            raise InvalidAddress(f"not an Ethereum address (0x + 40 hex digits): {address!r}")
        body = address[2:]
        if (
            body != body.lower()
            and body != body.upper()
            and to_checksum_address(address) != address
        ):
            raise InvalidAddress(f"EIP-55 checksum mismatch: {address!r}")
        if int(body, 16) == 0:
            raise InvalidAddress("the zero address burns funds")
        return to_checksum_address(address)
    lowered = address.lower()
    if address not in (lowered, address.upper()):
        raise InvalidAddress(f"mixed-case bech32 address: {address!r}")
    if "1" not in lowered:
        raise InvalidAddress(f"not a bech32 address: {address!r} (only segwit addresses)")
    hrp = lowered.rsplit("1", 1)[0]
    if hrp != spec.hrp:
        raise InvalidAddress(
            f"address for network {hrp!r}, this chain is {spec.hrp!r} ({spec.name})"
        )
    try:
        script = addr_bech32_to_pubkeyhash(lowered, prefix=spec.hrp, include_witver=True)
    except (EncodingError, ValueError, TypeError) as exc:
        raise InvalidAddress(f"invalid bech32 address {address!r}: {exc}") from None
    if script is None or len(script) not in (22, 34):
        raise InvalidAddress(f"unsupported witness program in {address!r}")
    return lowered


def script_of(spec: ChainSpec, address: str) -> str:
    """scriptPubKey hex of a validated Bitcoin-family address."""
    script = addr_bech32_to_pubkeyhash(address.lower(), prefix=spec.hrp, include_witver=True)
    return bytes(script).hex()
