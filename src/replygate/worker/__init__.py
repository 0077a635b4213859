"""Background loops: send the outbox, read the reply folder, expire requests."""
