"""The `paxion` command line: parses arguments, calls the library, prints with rich. No logic of its own."""

from __future__ import annotations

import sys

import click
from rich.console import Console

from paxion.errors import PaxionError

console = Console()
err_console = Console(stderr=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="paxion")
def cli() -> None:
    """Patch action knowledge into frozen video-language models.

    \b
    Typical study:
      paxion synth --out world            # or use your own SSv2 / Ego4D / NExT-QA data
      paxion bench build --dataset ssv2 --annotations world/annotations --out bench
      paxion extract --bench bench --videos world/videos --out cache
      paxion train --cache cache --model kp-perceiver --objective vtc+dvdm --out runs/kp
      paxion eval --cache cache --run runs/kp
      paxion retrieve --cache cache --run runs/paxion --task template
    or all of it on the built-in world:  paxion demo
    """


# ---- synth ----

# ---- bench ----

# ---- extract / cache ----

# ---- train / eval ----

# ---- retrieve ----

# ---- demo ----


def main() -> None:
    """Entry point: run the CLI, turning library errors into a one-line message and exit code 1."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        err_console.print("[red]error:[/red] aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except PaxionError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("[red]error:[/red] interrupted")
        sys.exit(130)
