"""Test helpers for the replica and crash proofs; nothing in src/ imports them."""
