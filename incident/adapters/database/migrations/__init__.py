"""Alembic migrations of the database schema (SQLite and PostgreSQL); see migrate.py."""
