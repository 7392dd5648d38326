"""The database: SQLite and PostgreSQL, the store, its tables and migrations."""
