"""Kootabase ledger: chart of accounts, verification of posting rules, balances re-derived
from postings, the PostgreSQL projection (asyncpg), statements, trial balance and proofs of
liabilities.

The ledger never changes engine state except through journaled commands.
"""
