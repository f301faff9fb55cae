"""On a terminal (a pseudo-terminal here): the two progress bars of `upload --wait`, and tables that fit."""

import re

import pexpect
from conftest import CATALOGCTL, write_csv

# Cursor movements and colours, to read what a person would see on the screen.
ANSI_SEQUENCE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
BAR = "━"


def run_on_a_terminal(cli_env, *args: str, columns: int = 140) -> tuple[int, str, str]:
    """(exit status, raw output, output without escape sequences) of catalogctl under a pty."""
    env = {**cli_env, "TERM": "xterm-256color"}
    env.pop("COLUMNS", None)
    child = pexpect.spawn(CATALOGCTL, list(args), env=env, encoding="utf-8", dimensions=(40, columns), timeout=120)
    child.expect(pexpect.EOF)
    child.close()
    raw = child.before
    return child.exitstatus, raw, ANSI_SEQUENCE.sub("", raw)


def test_upload_wait_draws_a_bytes_bar_then_a_rows_bar_with_rates_and_eta(cli_env, user, tmp_path):
    csv_path = write_csv(tmp_path / "big.csv", 5000)
    size_mb = csv_path.stat().st_size / 1e6
    status, raw, screen = run_on_a_terminal(cli_env, "upload", str(csv_path), "--wait")
    assert status == 0, screen

    # Both bars are redrawn in place (carriage returns, cursor up), never scrolled as plain lines.
    assert "\r" in raw and "\x1b[2K" in raw
    frames = [frame.strip() for frame in re.split(r"[\r\n]+", screen) if BAR in frame]
    uploads = [frame for frame in frames if frame.startswith("Uploading big.csv")]
    imports = [frame for frame in frames if frame.startswith("Importing")]
    assert uploads and imports

    # Bytes: percent, size sent of total, speed and time left.
    assert re.search(rf"100% {size_mb:.1f}/{size_mb:.1f} MB [\d.]+ [kMG]?B/s 0:00:00$", uploads[-1]), uploads[-1]
    # Rows: the status, percent of the file, rows so far, rows per second and time left.
    assert re.search(r"^Importing Success .* 100% 5,000 rows [\d,]+ rows/s 0:00:00$", imports[-1]), imports[-1]
    assert "Success: 5,000 processed: 5,000 inserted" in screen


def test_a_wide_table_keeps_the_columns_that_fit_and_names_the_rest(cli_env, seeded):
    status, _, screen = run_on_a_terminal(cli_env, "content", "--limit", "3", columns=80)
    assert status == 0
    lines = screen.splitlines()
    table = lines[: next(number for number, line in enumerate(lines) if line.startswith("Items 1-3 of "))]
    assert len(table) == 5  # header, rule, three rows
    assert all(len(line) <= 80 for line in table), table
    assert table[0].split()[:3] == ["id", "show_id", "type"]
    assert "Columns left out to fit the terminal: " in screen and "description" in screen.split("left out")[1]
