"""Microsoft Graph v1.0 mail endpoints of the emulator (mounted by `routes.mount`)."""
