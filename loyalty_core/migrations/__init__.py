"""Alembic migrations of the ledger schema; run them with ``loyalty init`` (``loyalty_core.db.migrate``)."""
