"""``replygate secrets ...``: the key that encrypts secrets at rest."""

from __future__ import annotations

import typer

from replygate.cli.common import container_from, user_errors

app = typer.Typer(help="The secret key that encrypts stored secrets.", no_args_is_help=True)


@app.command("new-key")
def new_key() -> None:
    """Print a new random key, for REPLYGATE_SECRET_KEY."""
    from replygate import secretbox

    typer.echo(secretbox.new_key())


@app.command()
def rotate(ctx: typer.Context) -> None:
    """Re-encrypt every stored secret under a new key.

    With DATA_DIR/secret.key, the file is replaced. With REPLYGATE_SECRET_KEY, the new key
    is printed: set it in the environment before the next start.
    """
    from replygate import secretbox
    from replygate.db import keys

    with user_errors():
        container = container_from(ctx)
        new_text = secretbox.new_key()
        new_box = secretbox.SecretBox(secretbox.parse_key(new_text, "new key"), "new key")
        with container.uow() as uow:
            count = keys.reencrypt_all(uow.session, container.secrets, new_box)
            if container.settings.secret_key is None:
                # Write the file inside the transaction: if the write fails, nothing commits.
                secretbox.write_key_file(container.settings.secret_key_file, new_text)
            uow.commit()
            with container.uow() as audit_uow:
                audit_uow.audit.record("cli", "secrets.rotate", details={"values": count})
                audit_uow.commit()
        typer.echo(f"re-encrypted {count} stored secret(s) under key {new_box.key_id}")
        if container.settings.secret_key is None:
            typer.echo(f"the new key is in {container.settings.secret_key_file}")
        else:
            typer.echo("set REPLYGATE_SECRET_KEY to this new key before the next start:")
            typer.echo(new_text)
