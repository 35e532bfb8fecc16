"""The Outbox: notification emails kept as .eml files when no mail server is configured."""
