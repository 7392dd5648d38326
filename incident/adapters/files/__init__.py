"""Files: playbooks and message templates read from their directories."""
