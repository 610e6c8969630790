"""Kootabase engine: command/event schema, sequencer, journal, matching core, snapshots,
state hash and replay.

The engine performs no I/O inside its core and imports none of gateway, marketdata,
ledger or custody.
"""
