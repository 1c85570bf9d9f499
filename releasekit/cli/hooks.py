"""`releasekit hooks`: install the git hooks that bring branch environments up and down.

The installed shims call `python -m releasekit.cli.hooks hook-impl HOOK ARGS...` with the
interpreter that installed them (falling back to `releasekit hooks hook-impl` on PATH), so a
hook works even before, or without, the `releasekit` script.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click


def _start(ctx: click.Context) -> Path:
    obj = ctx.find_root().obj
    root = obj.get("project_root") if isinstance(obj, dict) else None
    return Path(root) if root else Path.cwd()


@click.group()
def hooks() -> None:
    """Git hooks: a new branch brings up its environment, deleting it tears it down.

    \b
    post-checkout          `git switch -c B` runs `releasekit env up B` in the background
    reference-transaction  `git branch -D B` runs `releasekit env down B` in the background
    Set RELEASEKIT_SKIP_HOOKS=1 to skip them for one git command.
    """


@hooks.command()
@click.pass_context
def install(ctx: click.Context) -> None:
    """Install the hooks; a hook already there keeps running, first."""
    from rich.console import Console

    from releasekit.cli.errors import handled

    with handled(Console(stderr=True, highlight=False)):
        from releasekit.gitops.hooks import install_hooks

        result = install_hooks(_start(ctx))
    for path in result.chained:
        click.echo(f"kept your existing hook as {path}; it runs before releasekit's")
    names = ", ".join(p.name for p in result.written)
    click.echo(f"releasekit hooks installed in {result.hooks_dir}: {names}")


@hooks.command()
@click.pass_context
def uninstall(ctx: click.Context) -> None:
    """Remove releasekit's hooks and put back the ones they displaced."""
    from rich.console import Console

    from releasekit.cli.errors import handled

    with handled(Console(stderr=True, highlight=False)):
        from releasekit.gitops.hooks import uninstall_hooks

        result = uninstall_hooks(_start(ctx))
    for path in result.foreign:
        click.echo(f"left {path} alone: it is not releasekit's")
    for path in result.restored:
        click.echo(f"restored your {path.name} hook")
    removed = ", ".join(p.name for p in result.removed) or "none were installed"
    click.echo(f"releasekit hooks removed from {result.hooks_dir}: {removed}")


@hooks.command("hook-impl", hidden=True, context_settings={"ignore_unknown_options": True})
@click.argument("hook")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def hook_impl(hook: str, args: tuple[str, ...]) -> None:
    """Run by the installed hooks. Prints at most one line, always exits 0."""
    from releasekit.gitops.hook_runtime import run_hook

    line = run_hook(hook, args, _read_stdin() if hook == "reference-transaction" else "")
    if line:
        click.echo(line, err=True)


def _read_stdin() -> str:
    if sys.stdin is None or sys.stdin.isatty():
        return ""
    return sys.stdin.buffer.read().decode(sys.getfilesystemencoding(), "surrogateescape")


if __name__ == "__main__":
    hooks(prog_name="releasekit hooks")
