"""Webhook receiver: a Starlette app whose endpoints come from the provider modules."""
