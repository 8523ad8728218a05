"""Billing implementations: the reference pricer, the vectorized log pricer, and adapters to the libraries."""
