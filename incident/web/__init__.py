"""The HTTP doors: the REST API, Slack, webhooks, the dashboard and the public status page."""
