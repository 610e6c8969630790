"""Bitcoin-family withdrawals: a P2WPKH transaction built and signed with bitcoinlib from the
hot key's coins, with a fee rate and change back to the exchange's hot address.

Coins are the hot address's confirmed outputs (``scantxoutset``: no node wallet needed) minus
those already spent by a stored transaction of ours, so two withdrawals never spend the same
coin even before either is mined. The spent coins are reserved in the same SQLite transaction
that stores the signed bytes. Tracking a sent transaction needs the node's ``-txindex``.
Bitcoin-family transactions are not fee-bumped (no RBF here): a stuck one is re-broadcast.
"""

from __future__ import annotations

import math
from typing import Any

from aiohttp import ClientError
from bitcoinlib.keys import HDKey
from bitcoinlib.transactions import Transaction

from custody.addresses import bech32_address, p2wpkh_script, script_of
from custody.btc_rpc import BitcoinRpc, RpcError, to_sats
from custody.signer import Ambiguous, CannotSend, NotYet, Signer, TxState
from custody.store import Attempt, WithdrawalRow
from custody.withdrawals import BROADCAST, SIGNED

DUST_SATS = 546
"""Change below this is given to the fee instead of creating an unspendable output."""
_KNOWN = ("already in block chain", "txn-already-known", "txn-already-in-mempool")


def vsize_estimate(n_inputs: int, output_scripts: list[bytes]) -> int:
    """Virtual size of a P2WPKH-input transaction: 10.5 vB overhead, 68 vB per input."""
    return math.ceil(10.5 + 68 * n_inputs + sum(9 + len(s) for s in output_scripts))


class BitcoinSigner(Signer):
    def __init__(
        self,
        *args: Any,
        rpc: BitcoinRpc,
        hot_key: HDKey,
        fee_rate_sat_vb: int = 20,
        bitcoinlib_network: str = "litecoin_testnet",
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if not hot_key.is_private:
            raise ValueError("the signer needs the hot private key")
        self.rpc = rpc
        self.key = hot_key
        self.fee_rate = fee_rate_sat_vb
        self.network = bitcoinlib_network
        self.script = p2wpkh_script(hot_key)
        self.address = bech32_address(self.script, self.spec.hrp)

    async def tip_height(self) -> int:
        return int(await self.rpc.call("getblockcount"))

    async def coins(self) -> list[tuple[str, int, int]]:
        """Spendable confirmed (txid, vout, sats) of the hot address, largest first."""
        scan = await self.rpc.call("scantxoutset", "start", [f"addr({self.address})"])
        spent = self.store.spent_outpoints(self.chain)
        coins = [(u["txid"], int(u["vout"]), to_sats(u["amount"])) for u in scan["unspents"]]
        return sorted((c for c in coins if (c[0], c[1]) not in spent), key=lambda c: -c[2])

    async def sign_new(self, w: WithdrawalRow) -> Attempt:
        amount = self.registry.assets[w.asset_id].to_chain(w.atoms)
        dest = bytes.fromhex(script_of(self.spec, w.address))
        change = bytes.fromhex(self.script)
        chosen: list[tuple[str, int, int]] = []
        total = fee = 0
        for coin in await self.coins():
            chosen.append(coin)
            total += coin[2]
            fee = vsize_estimate(len(chosen), [dest, change]) * self.fee_rate
            if total >= amount + fee:
                break
        else:
            needed = amount + vsize_estimate(len(chosen) + 1, [dest, change]) * self.fee_rate
            pending = await self.pending_change(w.withdrawal_id)
            if total + pending >= needed:
                raise NotYet(
                    f"hot wallet {self.address} has {total} sats confirmed and {pending} in "
                    "change of unconfirmed withdrawals: waiting for it to confirm"
                )
            raise CannotSend(
                f"hot wallet {self.address} has {total} sats spendable, needs {amount} + fee"
            )
        rest = total - amount - fee
        tx = Transaction(network=self.network, witness_type="segwit", version=2)
        for txid, vout, value in chosen:
            tx.add_input(
                prev_txid=txid,
                output_n=vout,
                keys=self.key.public(),
                value=value,
                witness_type="segwit",
                script_type="sig_pubkey",
            )
        tx.add_output(amount, lock_script=dest)
        if rest >= DUST_SATS:
            tx.add_output(rest, lock_script=change)
        else:
            fee += rest
        tx.sign(self.key.private_byte)
        raw = tx.raw_hex()
        txid = (await self.rpc.call("decoderawtransaction", raw))["txid"]
        attempt = Attempt(w.withdrawal_id, 0, txid, raw, -1, 0, 0, fee, self.clock())
        self.store.add_attempt(attempt, chain=self.chain, spends=[(c[0], c[1]) for c in chosen])
        return attempt

    async def pending_change(self, other_than: int) -> int:
        """Sats coming back to the hot address from our withdrawals not yet in a block
        (their change is not in the confirmed UTXO set that `coins` reads)."""
        total = 0
        for w in self.store.withdrawals(chain=self.chain):
            if w.withdrawal_id == other_than or w.status not in (SIGNED, BROADCAST):
                continue
            raw = self.store.attempts(w.withdrawal_id)[-1].raw
            tx = await self.rpc.call("decoderawtransaction", raw)
            total += sum(
                to_sats(o["value"])
                for o in tx["vout"]
                if o["scriptPubKey"].get("hex") == self.script
            )
        return total

    async def broadcast(self, raw: str) -> None:
        try:
            await self.rpc.call("sendrawtransaction", raw)
        except RpcError as exc:
            if any(k in exc.message for k in _KNOWN):
                return
            raise CannotSend(exc.message) from None
        except (ClientError, TimeoutError, OSError) as exc:
            raise Ambiguous(str(exc)) from None

    async def abandon(self, w: WithdrawalRow, attempt: Attempt) -> None:
        self.store.release_outpoints(self.chain, w.withdrawal_id)

    async def find_mined(self, w: WithdrawalRow, attempts: list[Attempt]) -> TxState | None:
        for attempt in attempts:
            try:
                tx = await self.rpc.call("getrawtransaction", attempt.txid, True)
            except RpcError:
                continue
            confirmations = int(tx.get("confirmations", 0))
            if confirmations > 0:
                height = await self.tip_height() - confirmations + 1
                return TxState(attempt.txid, height, True, attempt.fee_chain)
        return None

    def describe(self) -> dict[str, Any]:
        return {"address": self.address, "fee_rate_sat_vb": self.fee_rate}
