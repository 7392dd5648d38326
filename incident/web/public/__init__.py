"""The built-in public status page: HTML at /status, Atlassian Statuspage's public JSON API
(v2) at /api/v2/, Atom and RSS history feeds; all served from an in-memory snapshot."""
