"""CLI tables printed whole (issue 23 item 7: "dire…" at 80 columns): into a pipe at their full width,
in a terminal within its width with cells folded, never an ellipsis."""

import io

from rich.console import Console

from capo_lab.cli.render import print_whole_table

HEADERS = ["direction", "n", "chrF base", "chrF trained", "BLEU base", "BLEU trained", "TER base", "p chrF"]
ROWS = [
    ["en-de", 8, "59.03", "61.20", "30.10", "31.40", "55.00", "0.001"],
    ["all", 64, None, "1", "2", "3", "4", "5"],
]


def printed(terminal: bool, width: int = 80) -> str:
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=terminal, color_system=None)
    print_whole_table(console, HEADERS, ROWS, title="chrF per direction")
    return out.getvalue()


def test_into_a_pipe_every_header_and_cell_is_whole_on_one_line() -> None:
    text = printed(terminal=False)
    assert "…" not in text
    header = next(line for line in text.splitlines() if line.startswith("┃"))
    assert all(name in header for name in HEADERS)  # each header whole, on the header line
    assert max(len(line) for line in text.splitlines()) > 80  # wider than rich's default in a pipe
    assert "0.001" in text and "64" in text


def test_in_a_terminal_it_stays_within_the_width_and_folds_instead_of_cutting() -> None:
    text = printed(terminal=True, width=60)
    lines = text.splitlines()
    assert "…" not in text and max(len(line) for line in lines) <= 60
    cells = "".join(ch for ch in text if ch.isalnum())
    for value in ["direction", "chrFtrained", "59.03", "0.001"]:  # folded across lines, every character kept
        assert all(ch in cells for ch in value.replace(".", ""))
    assert "59.03" in text and "en-de" in text  # short cells are not folded


def test_a_table_that_fits_is_printed_as_rich_prints_it() -> None:
    narrow = Console(file=io.StringIO(), width=200, color_system=None)
    print_whole_table(narrow, ["a", "b"], [["1", "2"]])
    assert narrow.file.getvalue().splitlines()[1].split() == ["┃", "a", "┃", "b", "┃"]
