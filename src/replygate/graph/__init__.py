"""Microsoft Graph + identity adapter: clouds, MSAL tokens, the Graph client, the sender
(draft + send, exactly once) and the reply mailbox (delta, MIME, batch disposal)."""
