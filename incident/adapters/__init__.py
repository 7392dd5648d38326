"""Adapters: the ports served by a database, vendors and files."""
