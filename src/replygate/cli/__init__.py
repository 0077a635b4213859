"""The ``replygate`` command line: thin commands over services built by ``bootstrap``.

Every module here imports only Typer at the top; heavy imports happen inside the
command that needs them, so ``replygate --help`` stays fast.
"""
