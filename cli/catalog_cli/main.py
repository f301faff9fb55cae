"""The ``catalogctl`` commands: thin wrappers that parse options, call the API and print the answer."""

import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from catalog_cli import __version__
from catalog_cli.client import DEFAULT_URL, ApiError, CatalogClient, Page
from catalog_cli.credentials import Credentials, CredentialStore, normalise_url
from catalog_cli.output import (
    FORMATS,
    JsonArrayWriter,
    columns_of,
    print_datasets,
    print_facets,
    print_job,
    print_jobs,
    print_row_errors,
    print_table,
    print_users,
    revert_summary,
    rows_summary,
    write_csv,
    write_json,
)
from catalog_cli.progress import progress_view, watch_import

# Exit codes, beside click's own 2 for a usage error.
EXIT_ERROR = 1
EXIT_IMPORT_FAILED = 3
EXIT_IMPORT_CANCELLED = 4
EXIT_INTERRUPTED = 130
# The API's page size when none is asked for.
DEFAULT_PAGE_SIZE = 20
EXIT_FOR_STATUS = {"Success": 0, "Failure": EXIT_IMPORT_FAILED, "Cancelled": EXIT_IMPORT_CANCELLED, "Reverted": 0}

EPILOG = """\b
Exit codes: 0 done; 1 the API or the network refused (the reason is printed);
2 bad usage; 3 an import ended in Failure; 4 an import was Cancelled.
"""


class CommandError(click.ClickException):
    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class Session:
    url: str
    out: Console
    err: Console
    store: CredentialStore

    def client(self) -> CatalogClient:
        return CatalogClient(self.url)

    def authenticated_client(self) -> CatalogClient:
        credentials = self.store.get(self.url)
        if credentials is None:
            raise CommandError(f"Not logged in to {self.url}: run `catalogctl login` first")
        if credentials.expired():
            credentials = self._renewed(credentials)
        return CatalogClient(self.url, credentials.access_token)

    def remember(self, username: str, body: dict[str, Any]) -> Credentials:
        """Keep the tokens of a login or refresh answer."""
        expires_in = body.get("expires_in")
        expires_at = time.time() + expires_in if isinstance(expires_in, int | float) else None
        credentials = Credentials(username, body["access_token"], expires_at, body.get("refresh_token"))
        self.store.save(self.url, credentials)
        return credentials

    def _renewed(self, credentials: Credentials) -> Credentials:
        expired = CommandError(f"Your session on {self.url} has expired: run `catalogctl login` again")
        if not credentials.refresh_token:
            raise expired
        try:
            with self.client() as client:
                body = client.refresh(credentials.refresh_token)
        except ApiError as exc:
            if exc.status == 401:
                raise expired from None
            raise
        return self.remember(credentials.username, body)


class CatalogGroup(click.Group):
    """Turns API failures into one line on stderr and an exit code, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ApiError as exc:
            message = str(exc)
            if exc.status == 401 and exc.with_token:
                message = f"{message}; log in again with `catalogctl login`"
            raise CommandError(message) from None
        except KeyboardInterrupt:
            raise CommandError("Interrupted", EXIT_INTERRUPTED) from None


@click.group(cls=CatalogGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--url",
    envvar="CATALOG_URL",
    default=DEFAULT_URL,
    show_default=True,
    show_envvar=True,
    metavar="URL",
    help="Base URL of the catalog gateway.",
)
@click.version_option(__version__, prog_name="catalogctl")
@click.pass_context
def cli(ctx: click.Context, url: str) -> None:
    """Sign up, upload CSV files with progress bars, follow imports and browse the catalog."""
    if not url.startswith(("http://", "https://")):
        raise click.BadParameter("must start with http:// or https://", param_hint="--url")
    ctx.obj = Session(
        url=normalise_url(url),
        out=_console(stderr=False),
        err=_console(stderr=True),
        store=CredentialStore(),
    )


pass_session = click.make_pass_decorator(Session)


def _console(*, stderr: bool) -> Console:
    """No markup from data, and no hard line breaks: a cursor token must stay one piece when copied.

    Off a terminal, tables take the width their cells need instead of a pretended 80 columns.
    """
    console = Console(stderr=stderr, markup=False, highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console.width = 10_000
    return console


# Accounts


@cli.command()
@click.option("--username", prompt=True, help="3-32 letters, digits, '_', '.' or '-'.")
@click.option("--email", prompt=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True, help="At least 8 characters.")
@pass_session
def signup(session: Session, username: str, email: str, password: str) -> None:
    """Create an account."""
    with session.client() as client:
        body = client.signup(username, email, password)
    session.out.print(f"{body.get('message', 'User created')}: {username}. Log in with `catalogctl login`.")


@cli.command()
@click.option("--username", prompt=True, help="Your username or e-mail address.")
@click.option("--password", prompt=True, hide_input=True, help="Prompted for when left out.")
@pass_session
def login(session: Session, username: str, password: str) -> None:
    """Log in and keep the access token in your config directory (readable by you alone)."""
    with session.client() as client:
        body = client.login(username, password)
    credentials = session.remember(username, body)
    renewed = " (renewed automatically)" if credentials.refresh_token else ""
    valid = f" (session valid for {int(body['expires_in']) // 60} minutes{renewed})" if credentials.expires_at else ""
    session.out.print(f"Logged in to {session.url} as {username}{valid}")


@cli.command()
@pass_session
def logout(session: Session) -> None:
    """End the session on the server and forget the tokens kept for this URL."""
    credentials = session.store.get(session.url)
    if credentials is None:
        session.out.print(f"Not logged in to {session.url}")
        return
    if credentials.refresh_token:
        try:
            with session.authenticated_client() as client:
                # Re-read: opening the client may have renewed (and so rotated) the refresh token.
                client.logout(session.store.get(session.url).refresh_token)
        except (ApiError, CommandError):
            # Already expired or revoked on the server: forgetting it here is all that is left to do.
            pass
    session.store.remove(session.url)
    session.out.print(f"Logged out of {session.url}")


@cli.command()
@pass_session
def whoami(session: Session) -> None:
    """Show the account the kept token belongs to."""
    with session.authenticated_client() as client:
        me = client.me()
    roles = ", ".join(me.get("roles") or [])
    session.out.print(f"{me.get('username')} <{me.get('email')}> ({roles}) on {session.url}")


# Users (admins)

ROLES = ("viewer", "editor", "admin")


@cli.command()
@click.option("--limit", type=click.IntRange(min=1), help="Users per page (default 20).")
@click.option("--offset", type=click.IntRange(min=1), help="1-based page number.")
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True)
@pass_session
def users(session: Session, limit: int | None, offset: int | None, output_format: str) -> None:
    """List the accounts, their roles and whether they are disabled (admins only)."""
    with session.authenticated_client() as client:
        page = client.users(limit=limit, offset=offset)
    _print_listing(session, page, print_users, limit=limit, offset=offset, output_format=output_format)


def _print_listing(
    session: Session,
    page: Page,
    print_items: Callable[[Console, list[dict[str, Any]]], None],
    *,
    limit: int | None,
    offset: int | None,
    output_format: str,
) -> None:
    """One page of a listing paged by offset (users, uploads): JSON, or a table and where it is."""
    if output_format == "json":
        write_json(session.out.file, page.items)
        return
    if page.items:
        print_items(session.out, page.items)
    first = _first_position(offset, limit)
    more = page.total is not None and first + len(page.items) - 1 < page.total
    _print_page_footer(session, page.total, len(page.items), first, f"--offset {(offset or 1) + 1}" if more else None)


@cli.command()
@click.argument("user")
@click.argument("role", type=click.Choice(ROLES))
@pass_session
def role(session: Session, user: str, role: str) -> None:
    """Give USER (a username, e-mail or id) the role ROLE (admins only).

    A lower role ends the user's sessions at once; a token already issued keeps its old role for at
    most 15 minutes.
    """
    _change_user(session, user, roles=[role])


@cli.command()
@click.argument("user")
@pass_session
def disable(session: Session, user: str) -> None:
    """Disable USER's account: no log-in, sessions ended (admins only)."""
    _change_user(session, user, disabled=True)


@cli.command()
@click.argument("user")
@pass_session
def enable(session: Session, user: str) -> None:
    """Enable USER's account again (admins only)."""
    _change_user(session, user, disabled=False)


def _change_user(session: Session, user: str, **changes: Any) -> None:
    with session.authenticated_client() as client:
        found = client.find_user(user)
        changed = client.update_user(found["id"], **changes)
    state = "disabled" if changed.get("disabled") else "active"
    session.out.print(f"{changed.get('username')}: {', '.join(changed.get('roles') or [])}, {state}")


# Imports


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
@click.option(
    "--mode",
    type=click.Choice(["insert", "upsert", "merge"]),
    help="insert (the default) skips rows whose key exists already; upsert updates them; merge sets the file's "
    "columns on the items that exist and creates none.",
)
@click.option("--key", metavar="COLUMN", help="The column that identifies a row (default: show_id, tconst, ...).")
@click.option("--dataset", metavar="NAME", help="The dataset to import into (default: default); created if new.")
@click.option(
    "--encoding",
    metavar="CODEC",
    help="The file's text encoding, e.g. cp1252 or latin-1 (default: UTF-8, or UTF-16 by its BOM).",
)
@click.option(
    "--quoting",
    type=click.Choice(["auto", "rfc4180", "none"]),
    help="auto (the default) decides from the file; rfc4180: quoted fields; none: quotes are plain characters.",
)
@click.option(
    "--null",
    metavar="MARKERS",
    help=r"Comma-separated missing-value markers, e.g. '\N,NA,NULL' (default: \N with --quoting none).",
)
@click.option(
    "--ragged",
    type=click.Choice(["error", "pad"]),
    help="A row with fewer fields than the header: error (the default), or pad it with nulls.",
)
@click.option("--wait", is_flag=True, help="Follow the import until it ends; the exit code tells how it ended.")
@pass_session
def upload(
    session: Session,
    file: Path,
    mode: str | None,
    key: str | None,
    dataset: str | None,
    encoding: str | None,
    quoting: str | None,
    null: str | None,
    ragged: str | None,
    wait: bool,
) -> None:
    """Upload a CSV or TSV FILE to import into the catalog, plain or compressed (.gz, or a .zip of one file)."""
    view = progress_view(session.err)
    with session.authenticated_client() as client:
        try:
            view.upload_started(file.name, file.stat().st_size)
            answer = client.upload(
                file,
                mode=mode,
                key=key,
                dataset=dataset,
                encoding=encoding,
                quoting=quoting,
                null=null,
                ragged=ragged,
                on_progress=view.upload_advanced,
            )
            view.upload_finished()
        finally:
            view.close()
        task_id = answer["task_id"]
        if not wait:
            session.out.print(task_id)
            message = answer.get("message", "Upload accepted")
            session.err.print(f"{message}; follow it with: catalogctl status {task_id} --watch")
            return
        session.err.print(f"Task {task_id}")
        job = _follow(session, client, task_id)
    _finish(session, job)


@cli.command()
@click.argument("task_id")
@click.option("--watch", is_flag=True, help="Follow the import until it ends; the exit code tells how it ended.")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@pass_session
def status(session: Session, task_id: str, watch: bool, output_format: str) -> None:
    """Show an import's status, counts and row errors."""
    with session.authenticated_client() as client:
        job = _follow(session, client, task_id) if watch else client.status(task_id)
    if output_format == "json":
        write_json(session.out.file, job)
        if watch:
            _exit_for(job)
    elif watch:
        _finish(session, job)
    else:
        print_job(session.out, job)


@cli.command()
@click.option("--limit", type=click.IntRange(min=1), help="Jobs per page (default 20).")
@click.option("--offset", type=click.IntRange(min=1), help="1-based page number.")
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True)
@pass_session
def uploads(session: Session, limit: int | None, offset: int | None, output_format: str) -> None:
    """List your uploads, newest first."""
    with session.authenticated_client() as client:
        page = client.uploads(limit=limit, offset=offset)
    _print_listing(session, page, print_jobs, limit=limit, offset=offset, output_format=output_format)


@cli.command()
@click.argument("task_id")
@pass_session
def cancel(session: Session, task_id: str) -> None:
    """Cancel an import; rows already written stay."""
    with session.authenticated_client() as client:
        job = client.cancel(task_id)
    session.out.print(f"Task {job.get('task_id', task_id)}: {job.get('status', 'Cancelled')} ({rows_summary(job)})")


@cli.command()
@click.argument("task_id")
@click.option("--wait", is_flag=True, help="Follow the revert until the import reads Reverted.")
@pass_session
def revert(session: Session, task_id: str, wait: bool) -> None:
    """Undo an ended import: remove the items it created that no one changed since. Items it updated in
    place (upsert, merge), or that another import changed since, stay as they are and are counted as kept."""
    with session.authenticated_client() as client:
        job = client.revert(task_id)
        if not wait:
            session.out.print(f"Task {job.get('task_id', task_id)}: {job.get('status', 'Reverting')}")
            session.err.print(f"Follow it with: catalogctl status {task_id} --watch")
            return
        session.err.print(f"Task {task_id}: {job.get('status', 'Reverting')}")
        try:
            job = watch_import(client, task_id, lambda status: None)
        except KeyboardInterrupt:
            raise CommandError(
                f"Stopped watching; the revert goes on. Follow it again with: catalogctl status {task_id} --watch",
                EXIT_INTERRUPTED,
            ) from None
    session.out.print(f"{job['status']}: {revert_summary(job)}")


def _follow(session: Session, client: CatalogClient, task_id: str) -> dict[str, Any]:
    view = progress_view(session.err)
    try:
        return watch_import(client, task_id, view.import_updated)
    except KeyboardInterrupt:
        raise CommandError(
            f"Stopped watching; the import goes on. Follow it again with: catalogctl status {task_id} --watch",
            EXIT_INTERRUPTED,
        ) from None
    finally:
        view.close()


def _finish(session: Session, job: dict[str, Any]) -> None:
    """The end of an import: a summary on stdout, and for a Failure or Cancelled import an exit code to match."""
    session.out.print(f"{job['status']}: {rows_summary(job)}")
    print_row_errors(session.out, job)
    _exit_for(job)


def _exit_for(job: dict[str, Any]) -> None:
    exit_code = EXIT_FOR_STATUS.get(job["status"], EXIT_ERROR)
    if exit_code:
        reason = f": {job['error']}" if job.get("error") else ""
        raise CommandError(f"The import of task {job['task_id']} ended in {job['status']}{reason}", exit_code)


# The catalog


# --filter COLUMN<op>VALUE: the API's filter[COLUMN][<op>]=VALUE. Two-character operators first.
FILTER_OPERATORS = {"!=": "ne", ">=": "gte", "<=": "lte", "=": "eq", ">": "gt", "<": "lt", "~": "contains"}
# --filter COLUMN:<name>:VALUE names any of the API's operators.
NAMED_FILTER = re.compile(
    r"(?P<column>[^:=!<>~]+):(?P<op>eq|ne|gt|gte|lt|lte|in|notin|contains|startswith|endswith|isnull):(?P<value>.*)",
    re.DOTALL,
)
FILTER_HELP = (
    "COLUMN<op>VALUE, repeatable; all must hold. <op>: = equals, != differs, > >= < <= compare (numbers with "
    "numbers, other text with text), ~ contains (case-insensitive). E.g. 'startYear>=1990', titleType=movie, "
    "'genres~drama'. The column ends at the first operator. Any of the API's operators by name: "
    "COLUMN:in:a,b (also notin, startswith, endswith, isnull:true|false, and the ones above: eq ne gt gte lt "
    "lte contains), e.g. titleType:in:movie,short."
)


def parse_filter(text: str) -> tuple[str, str, str] | None:
    """``startYear>=1990`` or ``titleType:in:movie,short`` as (column, op, value); None when ``text``
    holds no operator after a column."""
    if (named := NAMED_FILTER.fullmatch(text)) is not None and named["column"].strip():
        return named["column"].strip(), named["op"], named["value"]
    for index, char in enumerate(text):
        two = text[index : index + 2]
        if two in FILTER_OPERATORS:
            op, value = FILTER_OPERATORS[two], text[index + 2 :]
        elif char in FILTER_OPERATORS:
            op, value = FILTER_OPERATORS[char], text[index + 1 :]
        else:
            continue
        column = text[:index].strip()
        return (column, op, value) if column else None
    return None


def _parse_filters(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    """The query parameters of the --filter options: ``filter[COLUMN]`` for =, ``filter[COLUMN][op]`` else."""
    filters: dict[str, str] = {}
    for value in values:
        parsed = parse_filter(value)
        if parsed is None:
            raise click.BadParameter(
                f"{value!r} is not COLUMN=VALUE (or COLUMN with !=, >, >=, <, <=, ~ before the value)",
                ctx=ctx,
                param=param,
            )
        column, op, wanted = parsed
        name = f"filter[{column}]" if op == "eq" else f"filter[{column}][{op}]"
        if name in filters:
            raise click.BadParameter(f"{value!r}: {column} {op} is given twice", ctx=ctx, param=param)
        filters[name] = wanted
    return filters


@cli.command()
@click.option(
    "--limit", type=click.IntRange(min=1), help="Items per page (default 20; with --all, the largest the server takes)."
)
@click.option("--offset", type=click.IntRange(min=1), help="1-based page number, as in the original API.")
@click.option("--cursor", help="Continue after the page that gave this cursor (deep pages stay fast).")
@click.option("--dataset", metavar="NAME", help="The dataset to read (default: default).")
@click.option("--type", "item_type", metavar="TYPE", help="Only items of this type, e.g. Movie or 'TV Show'.")
@click.option("--filter", "filters", multiple=True, metavar="EXPR", callback=_parse_filters, help=FILTER_HELP)
@click.option("--q", help="Case-insensitive text the title (or primaryTitle, or name) contains.")
@click.option("--sort", metavar="[-]COLUMN", help="Sort by a column, '-' for descending (default: import order).")
@click.option("--all", "fetch_all", is_flag=True, help="Every matching item, page after page.")
@click.option(
    "--facet",
    "facets",
    multiple=True,
    metavar="COLUMN",
    help="Count the values of COLUMN over the matching items instead of listing them; repeatable.",
)
@click.option(
    "--facet-size", type=click.IntRange(1, 100), help="With --facet: how many values to list per column (default 10)."
)
@click.option(
    "--bins", type=click.IntRange(1, 100), help="With --facet: a histogram of N bins for a column of numbers."
)
@click.option("--format", "output_format", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--columns", metavar="A,B,...", help="The columns to show in a table or CSV (default: all).")
@pass_session
def content(
    session: Session,
    limit: int | None,
    offset: int | None,
    cursor: str | None,
    dataset: str | None,
    item_type: str | None,
    filters: dict[str, str],
    q: str | None,
    sort: str | None,
    fetch_all: bool,
    facets: tuple[str, ...],
    facet_size: int | None,
    bins: int | None,
    output_format: str,
    columns: str | None,
) -> None:
    """Browse the catalog: one page, or with --all every matching item, or with --facet the counts of
    a column's values."""
    if facets:
        given = {"--limit": limit, "--offset": offset, "--cursor": cursor, "--sort": sort, "--all": fetch_all}
        paging = [name for name, value in {**given, "--columns": columns}.items() if value]
        if paging:
            raise click.UsageError(f"--facet counts over every matching item: leave out {', '.join(paging)}")
        if output_format == "csv":
            raise click.UsageError("--facet prints a table or json, not csv")
        _facets(session, dataset, item_type, filters, q, facets, facet_size, bins, output_format)
        return
    if facet_size is not None or bins is not None:
        raise click.UsageError("--facet-size and --bins go with --facet")
    if fetch_all and (offset or cursor):
        raise click.UsageError("--all walks every page itself: leave out --offset and --cursor")
    if offset and cursor:
        raise click.UsageError("--offset and --cursor cannot be used together")
    params: dict[str, Any] = {
        name: value
        for name, value in (
            ("dataset", dataset),
            ("limit", limit),
            ("offset", offset),
            ("cursor", cursor),
            ("type", item_type),
            ("q", q),
            ("sort", sort),
        )
        if value is not None
    }
    params.update(filters)
    chosen = [column.strip() for column in columns.split(",") if column.strip()] if columns else None

    with session.client() as client:
        if fetch_all:
            pages = client.all_contents(params)
            if output_format == "json":
                with JsonArrayWriter(session.out.file) as writer:
                    for page in pages:
                        for item in page.items:
                            writer.write(item)
                return
            items = [item for page in pages for item in page.items]
            total, first, next_page = len(items), 1, None
        else:
            page = client.contents(params)
            items, total = page.items, page.total
            first = None if cursor else _first_position(offset, limit)
            next_page = f"--cursor {page.next_cursor}" if page.next_cursor and page.items else None

    if output_format == "json":
        write_json(session.out.file, items)
    elif output_format == "csv":
        write_csv(session.out.file, items, columns_of(items, chosen))
    else:
        left_out = print_table(session.out, items, columns_of(items, chosen)) if items else []
        _print_page_footer(session, total, len(items), first, next_page)
        if left_out:
            session.err.print(
                f"Columns left out to fit the terminal: {', '.join(left_out)} (choose with --columns, "
                "or use --format csv or json)"
            )


def _facets(
    session: Session,
    dataset: str | None,
    item_type: str | None,
    filters: dict[str, str],
    q: str | None,
    columns: tuple[str, ...],
    size: int | None,
    bins: int | None,
    output_format: str,
) -> None:
    params: dict[str, Any] = {"facet": list(columns), **filters}
    for name, value in (("facet_size", size), ("facet_bins", bins), ("type", item_type), ("q", q)):
        if value is not None:
            params[name] = value
    with session.client() as client:
        body = client.facets(dataset or "default", params)
    if output_format == "json":
        write_json(session.out.file, body)
        return
    print_facets(session.out, body)
    total = body.get("total")
    session.err.print("No items match" if total == 0 else f"Counted over {total:,} matching items")


@cli.command()
@click.option("--dataset", metavar="NAME", default="default", show_default=True, help="The dataset to export.")
@click.option(
    "--format",
    "export_format",
    type=click.Choice(["csv", "ndjson"]),
    default="csv",
    show_default=True,
    help="csv: the dataset's columns, a file an upload takes back; ndjson: one item per line.",
)
@click.option("--type", "item_type", metavar="TYPE", help="Only items of this type.")
@click.option("--filter", "filters", multiple=True, metavar="EXPR", callback=_parse_filters, help=FILTER_HELP)
@click.option("--q", help="Case-insensitive text the title (or primaryTitle, or name) contains.")
@click.option("--sort", metavar="[-]COLUMN", help="Sort by a column, '-' for descending (default: import order).")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write to this file (default: standard output); it appears only once the export is complete.",
)
@pass_session
def export(
    session: Session,
    dataset: str,
    export_format: str,
    item_type: str | None,
    filters: dict[str, str],
    q: str | None,
    sort: str | None,
    output: Path | None,
) -> None:
    """Stream every matching item of a dataset, as CSV or NDJSON, however many there are."""
    params: dict[str, Any] = {"format": export_format, **filters}
    for name, value in (("type", item_type), ("q", q), ("sort", sort)):
        if value is not None:
            params[name] = value
    with session.client() as client:
        if output is None:
            stdout = click.get_binary_stream("stdout")
            client.export(dataset, params, stdout)
            stdout.flush()
            return
        partial = output.with_name(f"{output.name}.part")
        try:
            with partial.open("wb") as file:
                written = client.export(dataset, params, file)
            partial.replace(output)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    session.err.print(f"Wrote {written:,} bytes to {output}")


@cli.command()
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True)
@pass_session
def datasets(session: Session, output_format: str) -> None:
    """List the datasets: owner, key column, items and columns."""
    with session.client() as client:
        listed = client.datasets()
    if output_format == "json":
        write_json(session.out.file, listed)
    else:
        print_datasets(session.out, listed)


def _first_position(offset: int | None, limit: int | None) -> int:
    """The position of a page's first item: ``offset`` counts pages, as in the original API."""
    return ((offset or 1) - 1) * (limit or DEFAULT_PAGE_SIZE) + 1


def _print_page_footer(
    session: Session, total: int | None, shown: int, first: int | None, next_page: str | None
) -> None:
    """Where this page sits in the listing, on stderr so that the data on stdout stays clean."""
    of_total = f" of {total:,}" if total is not None else ""
    if total == 0:
        summary = "No items match"
    elif shown == 0:
        summary = f"Nothing on this page ({total:,} in all)" if total is not None else "Nothing on this page"
    elif first is None:
        summary = f"{shown:,} items{of_total}"
    else:
        summary = f"Items {first:,}-{first + shown - 1:,}{of_total}"
    if next_page:
        summary += f"; next page: {next_page}"
    session.err.print(summary)


def main() -> None:
    cli.main(prog_name="catalogctl", auto_envvar_prefix=None)


if __name__ == "__main__":
    sys.exit(main())
