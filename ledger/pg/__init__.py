"""The PostgreSQL projection of the ledger (asyncpg): schema migrations, the projector that
bulk-loads events with COPY, and the report queries."""
