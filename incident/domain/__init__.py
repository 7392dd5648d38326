"""Pure domain: incident lifecycle, playbook model and planning maths (no I/O, no clock)."""
