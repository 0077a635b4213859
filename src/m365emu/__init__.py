"""m365emu: a Microsoft 365 emulator (identity platform v2.0 + Graph mail) for tests and demos.

It never imports replygate. Entry points: `m365emu.app.create_app` (ASGI app),
`m365emu.testing.start_emulator` (HTTPS server in a thread for test suites) and the
`m365emu serve` command (`m365emu.cli`). See docs/emulator.md.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
