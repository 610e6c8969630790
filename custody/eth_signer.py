"""Ethereum withdrawals: EIP-1559 transactions from the hot account, with nonce tracking and
fee bumping of stuck transactions (same nonce, higher fees).

Nonces: the next nonce is the larger of the store's counter and the node's pending count, and
the store's counter advances in the same SQLite transaction that records the signed bytes, so
two withdrawals can never share a nonce and a restart never reuses one. A transaction the node
refuses outright gives its nonce back (it never existed). A replacement reuses its nonce with
both fee fields raised by at least 12.5 % (nodes demand 10 %).
"""

from __future__ import annotations

from typing import Any

from aiohttp import ClientError
from eth_abi import encode
from eth_account import Account
from eth_utils import keccak
from web3 import AsyncWeb3
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3RPCError

from custody.eth_watch import hexstr
from custody.signer import Ambiguous, CannotSend, Signer, TxState
from custody.store import Attempt, WithdrawalRow

TRANSFER_SELECTOR = keccak(text="transfer(address,uint256)")[:4]
NATIVE_GAS = 21_000
_KNOWN = ("already known", "nonce too low", "already imported", "known transaction")


def transfer_calldata(to: str, amount: int) -> bytes:
    return TRANSFER_SELECTOR + encode(["address", "uint256"], [to, amount])


class EthereumSigner(Signer):
    def __init__(
        self,
        *args: Any,
        w3: AsyncWeb3,
        hot_key: str,
        chain_id: int,
        priority_fee_wei: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.w3 = w3
        self.account = Account.from_key(hot_key)
        self.chain_id = chain_id
        self.priority_fee_wei = priority_fee_wei

    @property
    def address(self) -> str:
        return str(self.account.address)

    async def tip_height(self) -> int:
        return int(await self.w3.eth.block_number)

    async def _fees(self) -> tuple[int, int]:
        """(maxFeePerGas, maxPriorityFeePerGas): room for two doublings of the base fee."""
        latest = await self.w3.eth.get_block("latest")
        base = int(latest.get("baseFeePerGas", 0))
        tip = self.priority_fee_wei
        if tip is None:
            tip = int(await self.w3.eth.max_priority_fee)
        return 2 * base + tip, tip

    async def _body(self, w: WithdrawalRow) -> dict[str, Any]:
        asset = self.registry.asset(w.asset_id)
        assert asset is not None
        amount = asset.to_chain(w.atoms)
        if asset.native:
            return {"to": w.address, "value": amount, "gas": NATIVE_GAS, "data": b""}
        contract = self.w3.to_checksum_address(asset.contract)
        call = {
            "from": self.address,
            "to": contract,
            "value": 0,
            "data": transfer_calldata(w.address, amount),
        }
        try:
            gas = int(await self.w3.eth.estimate_gas(call))  # type: ignore[arg-type]
        except (ContractLogicError, Web3RPCError, ValueError) as exc:
            raise CannotSend(f"token transfer would fail: {exc}") from None
        return {"to": contract, "value": 0, "gas": gas + gas // 5, "data": call["data"]}

    def _sign(self, body: dict[str, Any], nonce: int, max_fee: int, tip: int) -> tuple[str, str]:
        tx = {
            **body,
            "type": 2,
            "chainId": self.chain_id,
            "nonce": nonce,
            "maxFeePerGas": max_fee,
            "maxPriorityFeePerGas": tip,
        }
        signed = self.account.sign_transaction(tx)
        return hexstr(signed.hash), hexstr(signed.raw_transaction)

    async def sign_new(self, w: WithdrawalRow) -> Attempt:
        body = await self._body(w)
        pending = int(await self.w3.eth.get_transaction_count(self.address, "pending"))
        nonce = max(self.store.next_nonce(self.chain, self.address), pending)
        max_fee, tip = await self._fees()
        balance = int(await self.w3.eth.get_balance(self.address, "pending"))
        if balance < body["value"] + body["gas"] * max_fee:
            raise CannotSend(
                f"hot wallet {self.address} holds {balance} wei, needs "
                f"{body['value'] + body['gas'] * max_fee}"
            )
        txid, raw = self._sign(body, nonce, max_fee, tip)
        attempt = Attempt(w.withdrawal_id, 0, txid, raw, nonce, max_fee, tip, 0, self.clock())
        self.store.add_attempt(attempt, chain=self.chain, next_nonce=(self.address, nonce + 1))
        return attempt

    async def bump(self, w: WithdrawalRow, attempts: list[Attempt]) -> Attempt | None:
        last = attempts[-1]
        max_fee, tip = await self._fees()
        tip = max(tip, last.tip + last.tip // 8 + 1)
        max_fee = max(max_fee + tip, last.max_fee + last.max_fee // 8 + 1)
        txid, raw = self._sign(await self._body(w), last.nonce, max_fee, tip)
        attempt = Attempt(
            w.withdrawal_id, last.attempt + 1, txid, raw, last.nonce, max_fee, tip, 0, self.clock()
        )
        self.store.add_attempt(attempt, chain=self.chain)
        return attempt

    async def broadcast(self, raw: str) -> None:
        try:
            await self.w3.eth.send_raw_transaction(raw)
        except (Web3RPCError, ValueError) as exc:
            if any(k in str(exc).lower() for k in _KNOWN):
                return
            raise CannotSend(str(exc)) from None
        except (ClientError, TimeoutError, OSError) as exc:
            raise Ambiguous(str(exc)) from None

    async def abandon(self, w: WithdrawalRow, attempt: Attempt) -> None:
        # the refused transaction never existed: hand its nonce back if nothing came after it
        if self.store.next_nonce(self.chain, self.address) == attempt.nonce + 1:
            self.store.set_next_nonce(self.chain, self.address, attempt.nonce)

    async def find_mined(self, w: WithdrawalRow, attempts: list[Attempt]) -> TxState | None:
        for attempt in attempts:
            try:
                receipt = await self.w3.eth.get_transaction_receipt(attempt.txid)  # type: ignore[arg-type]
            except TransactionNotFound:
                continue
            if receipt is None or receipt.get("blockNumber") is None:
                continue
            fee = int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])
            return TxState(attempt.txid, int(receipt["blockNumber"]), receipt["status"] == 1, fee)
        return None
