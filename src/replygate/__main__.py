"""``python -m replygate`` runs the same CLI as the ``replygate`` script."""

from replygate.cli.main import run

if __name__ == "__main__":
    run()
