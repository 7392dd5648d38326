"""Strict local fakes of the vendor APIs the adapters talk to (aiohttp apps on loopback)."""
