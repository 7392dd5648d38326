"""The engine's real-time part: claims due step occurrences and runs them."""
