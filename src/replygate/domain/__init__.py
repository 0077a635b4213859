"""The pure core: approval requests, policies, decisions and reply tokens.

Nothing here imports I/O or anything outside the standard library.
"""
