"""Every `inv` command line in README.md and docs/*.md parses against the real task collection.

The command lines are taken from the shell code blocks (```bash, ```sh, ```shell, ```console or a bare ```):
each line, with `\\` continuations joined and `# comments` dropped, is cut at `;`, `&&`, `||`, `|` and `&`, and
every piece that starts with `inv`, `invoke` or `.venv/bin/inv` is parsed by invoke's own Parser: our
Program's core flags (invoke's, plus -H, -i, -S, -t, --sync, --allow-dirty, --setup, --dry-run before the task
name; tasks/lib/remote/program.py) and the contexts of the very collection `inv` loads (tasks.py). So a task
that does not exist, a flag it does not take, a flag without its value, a value of the wrong type or a missing
positional argument fails here, naming the file and line. `...` stands for flags left out and is dropped;
anything else that is not a real command (`[--name demo]`, `<run>`) fails: write a real one instead.
"""

import re
import shlex
from pathlib import Path

import pytest
from invoke.parser import ParseError, Parser, ParserContext

import tasks
from tasks.lib.remote.program import HostsProgram

ROOT = Path(__file__).resolve().parents[1]
SHELL_FENCES = {"", "bash", "sh", "shell", "console"}
PROGRAMS = {"inv", "invoke", ".venv/bin/inv", ".venv/bin/invoke"}
SEPARATORS = {";", "&&", "||", "|", "&"}
ELLIPSIS = "..."
NAMES_INV = re.compile(r"(^|[\s;&|])(\.venv/bin/)?inv(oke)?(\s|$)")  # a line that may run inv: lexed


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def shell_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of every line in a shell code block, `\\` continuations joined."""
    lines, fence, pending, start = [], None, "", 0
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("```"):
            fence = stripped[3:].strip().lower() if fence is None else None
            continue
        if fence not in SHELL_FENCES:
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        if NAMES_INV.search(pending + stripped):
            lines.append((start, pending + stripped))
        pending = ""
    return lines


def inv_commands(line: str) -> list[list[str]]:
    """The argument lists (program name left out) of the `inv` commands on one shell line."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    words, commands = list(lexer), []
    pieces, piece = [], []
    for word in words:
        if word in SEPARATORS:
            pieces.append(piece)
            piece = []
        else:
            piece.append(word)
    pieces.append(piece)
    for piece in pieces:
        while piece and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", piece[0]):  # NAME=value inv ...
            piece = piece[1:]
        if piece and piece[0] in PROGRAMS:
            commands.append([word for word in piece[1:] if word != ELLIPSIS])
    return commands


def found() -> list[tuple[str, list[str] | str]]:
    """(file:line, argv) of every `inv` command line in README.md and docs/*.md; a line shlex cannot split
    stays a string (its test fails)."""
    commands = []
    for page in pages():
        for number, line in shell_lines(page.read_text()):
            where = f"{page.relative_to(ROOT)}:{number}"
            try:
                commands += [(where, argv) for argv in inv_commands(line)]
            except ValueError:  # an unclosed quotation
                commands.append((where, line))
    return commands


def parse(argv: list[str]):
    """argv as `inv` parses it: our Program's core flags, then the real collection's tasks and flags."""
    core = ParserContext(args=HostsProgram().core_args())
    return Parser(initial=core, contexts=tasks.ns.to_contexts()).parse_argv(argv)


COMMANDS = found()


def test_the_pages_hold_many_command_lines():
    assert (ROOT / "docs").is_dir()
    assert len(COMMANDS) >= 100, len(COMMANDS)
    named = {word for _, argv in COMMANDS if isinstance(argv, list) for word in argv if word in tasks.ns.task_names}
    assert {"hw.check", "env.setup", "data.fetch", "run.train", "run.results", "remote.run"} <= named, named


@pytest.mark.parametrize(("where", "argv"), COMMANDS, ids=[where for where, _ in COMMANDS])
def test_command_line_parses_against_the_real_tasks(where, argv):
    assert isinstance(argv, list), f"{where}: not a shell command line (an unclosed quotation?): {argv}"
    placeholders = [word for word in argv if word.startswith(("[", "<"))]  # [--name demo], <run>
    assert not placeholders, f"{where}: write a real command, not {placeholders}: inv {shlex.join(argv)}"
    try:
        parse(argv)
    except (ParseError, ValueError) as error:
        pytest.fail(f"{where}: inv {shlex.join(argv)}: {error}")


@pytest.mark.parametrize(
    "line",
    [
        "inv run.status --nme demo",  # a misspelled flag
        "inv run.statuss --name demo",  # a task that does not exist
        "inv -H login1 --sync run.train --datasets",  # a flag without its value
        "inv remote.run --host login1",  # a missing positional argument
        "scripts/bootstrap && .venv/bin/inv run.train --cofnig x  # comment",
        "inv run.list; inv run.results --cvs",
    ],
)
def test_a_wrong_command_line_is_caught(line):
    (argv,) = [argv for argv in inv_commands(line) if "run.list" not in argv]
    with pytest.raises(ParseError):
        parse(argv)


def test_a_value_of_the_wrong_type_is_caught():
    with pytest.raises(ValueError):
        parse(["data.synth", "--root", "/tmp/x", "--images", "many"])


def test_lines_are_cut_into_commands_and_comments_dropped():
    text = "```bash\nA=1 inv hw.check --json   # gpu # and more\nscripts/x && inv -H h run.train \\\n  --smoke\n```\n"
    lines = shell_lines(text + "```python\ninv not.shell\n```\n")
    assert lines == [(2, "A=1 inv hw.check --json   # gpu # and more"), (3, "scripts/x && inv -H h run.train  --smoke")]
    assert [inv_commands(line) for _, line in lines] == [
        [["hw.check", "--json"]],
        [["-H", "h", "run.train", "--smoke"]],
    ]
    assert inv_commands('inv run.status; inv -H a run.logs ... --follow | tail "x y"') == [
        ["run.status"],
        ["-H", "a", "run.logs", "--follow"],
    ]
