"""Kootabase custody: chain watchers (web3 for Ethereum/ERC-20, bitcoinlib + Bitcoin Core
JSON-RPC for the Bitcoin family), the withdrawal signer and reconciliation with the ledger.

Custody credits nothing except through journaled commands.
"""

from custody.bitcoinlib_home import isolate as _isolate_bitcoinlib

_isolate_bitcoinlib()  # before any custody module imports bitcoinlib: nothing in $HOME
