"""Paged KV cache: block allocator, paged-attention API, the Triton paged-decode kernel and adapters."""
