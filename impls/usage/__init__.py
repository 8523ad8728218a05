"""Usage-mapping implementations: the reference parsers and adapters to the SDK types and libraries."""
