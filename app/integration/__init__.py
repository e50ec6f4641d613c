"""Integration with other systems: the outbox, webhooks, the event stream, NATS, bulk import."""
