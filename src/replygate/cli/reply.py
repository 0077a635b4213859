"""``replygate reply ...``: what replygate understands of a reply (filled by the reply-reading work)."""

import typer

app = typer.Typer(help="Inspect how replies are understood.", no_args_is_help=True)
