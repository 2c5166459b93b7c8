"""Persistence for CAPO Lab: SQLAlchemy models, engine factory, migrations and queries.

Imports no training code; nothing here opens a database at import time.
"""
