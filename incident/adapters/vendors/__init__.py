"""Vendors: PagerDuty, Slack, Statuspage, SMTP, and the built-in outbox."""
