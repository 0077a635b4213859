"""The Microsoft identity platform (v2.0) half of the emulator.

Modules: `store` (sessions, codes, refresh tokens), `tokens` (signing keys, JWT issue and
verification for Graph), `errors` (AADSTS error shapes), `scopes`, `clientauth`
(secret and certificate credentials), `authorize` (browser sign-in), `token_endpoint`,
`discovery` and `routes` (mounting).
"""
