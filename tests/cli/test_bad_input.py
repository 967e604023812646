"""Every option of every command, given a bad value, is refused in one line: no traceback.

The commands are found by walking the CLI's command tree, so a command added later is
covered without touching this file. Each option gets values that cannot be right for its type
(negative and zero counts, text where a number goes, NaN, empty strings, paths that cannot
exist), plus the known bad inputs of particular options. The model is an OpenAI-compatible
endpoint on a closed port, so nothing slow can run if a bad value slipped through.
"""

from __future__ import annotations

import signal
import socket
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from types import FrameType
from typing import Any, get_args

import pytest
import typer
from typer.testing import CliRunner

from maestro_lite import Settings
from maestro_lite.cli import app

UNDER_A_FILE = "{tmp}/file.txt/sub"
"""A path that no command can read or create: its parent is a file."""

BY_TYPE: dict[type, list[str]] = {
    int: ["-5", "0", "abc"],
    float: ["-1", "abc", "nan"],
    str: ["", "   "],
    Path: ["", UNDER_A_FILE],
}
"""Bad values by an option's type (a list option gets them as one of its items)."""

BY_OPTION: dict[str, list[str]] = {
    "--schema": ["notes.txt:X", "{tmp}/nosuch.json", "{tmp}/nosuch.py:Model", "json"],
    "--after": ["nosuchjob"],
    "--cron": ["not a cron", "61 * * * *"],
    "--tz": ["Mars/Olympus"],
    "--mode": ["sideways"],
    "--fusion": ["sideways"],
    "--format": ["docx", "jsonl,,csv"],
    "--model": ["nosuchprovider:x", "local:"],
    "--docs": ["{tmp}/nonexistent"],
    "--out": [UNDER_A_FILE],
    "--output": [UNDER_A_FILE],
    "--table": ["no table; drop"],
}
"""Values that are well-formed for the type but wrong for the option."""

ALLOWED: dict[tuple[str, str], set[str]] = {
    # A cost limit of 0 is legal (only free models may run), not a bad value.
    ("run", "--max-cost"): {"0"},
    ("resume", "--max-cost"): {"0"},
    # Port 0 asks the system for any free port (the dashboard prints the one it got).
    ("ui", "--port"): {"0"},
}
"""(command, option) -> values of BY_TYPE that are valid there."""

GOOD_ARGUMENT = {
    "job": ["run", "a task"],
    "directory": "{tmp}",
    "paths": ["{tmp}/file.txt"],
    "files": ["{tmp}/file.txt"],
}
"""Valid values for arguments whose type says too little (the rest get ``x``)."""

GOOD_OPTION = {"--schema": "{tmp}/schema.json", "--cron": "0 6 * * 1", "--after": "weekly"}
"""Valid values for the required options (the rest get ``x``)."""


@dataclass(frozen=True)
class Case:
    command: list[str]
    param: str
    value: str
    args: list[str]

    @property
    def id(self) -> str:
        return f"{' '.join(self.command)} {self.param}={self.value!r}"


def _commands(group: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _commands(command, [*path, name])
        else:
            yield [*path, name], command


def _annotation(param: Any) -> Any:
    annotation = param.type_descriptor.annotation
    args = [a for a in get_args(annotation) if a is not type(None)]
    return args[0] if args and annotation.__class__.__name__ != "EnumType" else annotation


def _is_list(param: Any) -> bool:
    return bool(param.multiple or param.nargs != 1)


def _bad_values(command: str, param: Any) -> list[str]:
    if getattr(param, "is_flag", False):
        return []
    annotation = _annotation(param)
    values = []
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        values = ["garbage"]
    else:
        values = [v for t, vs in BY_TYPE.items() if annotation is t for v in vs]
    values += next((BY_OPTION[o] for o in param.opts if o in BY_OPTION), [])
    allowed = set().union(*(ALLOWED.get((command, o), set()) for o in param.opts))
    return [v for v in values if v not in allowed]


def _good_arguments(command: Any) -> list[str]:
    """The arguments and required options a valid call of ``command`` has."""
    out: list[str] = []
    tail: list[str] = []
    for param in command.params:
        if "Argument" in type(param).__name__:
            value: Any = GOOD_ARGUMENT.get(param.name, ["x"] if _is_list(param) else "x")
            if param.name == "job":
                tail = ["--", *value]  # a job's own arguments come last, after --
                continue
            out += value if isinstance(value, list) else [value]
        elif param.required:
            out += [param.opts[0], GOOD_OPTION.get(param.opts[0], "x")]
    return out + tail


def _cases() -> list[Case]:
    root = typer.main.get_command(app)
    cases = []
    for path, command in _commands(root, []):
        good = _good_arguments(command)
        name = " ".join(path)
        for param in command.params:
            for value in _bad_values(name, param):
                if "Argument" in type(param).__name__:
                    index = [p for p in command.params if "Argument" in type(p).__name__]
                    args = list(good)
                    position = good.index("--") if param.name == "job" else index.index(param)
                    if param.name == "job":
                        args = [*good[: position + 1], value]
                    else:
                        args[position] = value
                    cases.append(Case(path, param.name, value, [*path, *args]))
                else:
                    given = [a for i, a in enumerate(good) if not _same_option(good, i, param)]
                    split = given.index("--") if "--" in given else len(given)
                    args = [*given[:split], param.opts[0], value, *given[split:]]
                    cases.append(Case(path, param.opts[0], value, [*path, *args]))
    return cases


def _same_option(args: list[str], index: int, param: Any) -> bool:
    """Whether ``args[index]`` is ``param`` (or its value) among the good arguments."""
    return args[index] in param.opts or (index > 0 and args[index - 1] in param.opts)


CASES = _cases()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("bad-input")
    (tmp / "file.txt").write_text("A document.\n")
    (tmp / "schema.json").write_text('{"type": "object", "properties": {"a": {"type": "string"}}}')
    return tmp


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a command writes by default (``extract --out extracted``) lands here."""
    monkeypatch.chdir(tmp_path)


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise TimeoutError("the command ran on: a bad value was not refused up front")


def test_the_walk_covers_every_command() -> None:
    commands = {" ".join(c.command) for c in CASES}
    assert {"run", "resume", "worker", "watch", "extract", "trigger add", "jobs list"} <= commands
    assert len(CASES) > 150


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_bad_value_is_refused_in_one_line_naming_it(case: Case, place: Path) -> None:
    args = [a.replace("{tmp}", str(place)) for a in case.args]
    value = case.value.replace("{tmp}", str(place))
    env = {
        "MAESTRO_HOME": str(place / "home"),
        "MAESTRO_PROVIDER": "openai",
        "OPENAI_BASE_URL": f"http://127.0.0.1:{_closed_port()}/v1",
        "MAESTRO_MODEL": "test-model",
        "MAESTRO_EMBEDDER": "hashing",
        "MAESTRO_ALLOW_DOWNLOAD": "0",
        "MAESTRO_DEBUG": None,
        "COLUMNS": "300",
        "NO_COLOR": "1",
    }
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(20)
    try:
        result = CliRunner().invoke(app, args, env=env)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    output = result.output
    shown = "".join(traceback.format_exception(result.exception)) if result.exception else ""
    assert result.exception is None or isinstance(result.exception, SystemExit), shown
    assert "Traceback" not in output, output
    assert "unexpected" not in output, output  # the one line of an unforeseen exception
    assert result.exit_code != 0, f"{args} was accepted:\n{output}"
    names = [case.param, case.param.upper(), value] if value.strip() else [case.param]
    names += [o for p in _params(case) for o in p]
    assert any(n and n in output for n in names), f"{args}: the error names neither:\n{output}"


def _params(case: Case) -> list[list[str]]:
    """The option names of ``case``'s parameter (its short and long forms)."""
    command: Any = typer.main.get_command(app)
    for name in case.command:
        command = command.commands[name]
    return [p.opts for p in command.params if case.param in p.opts or p.name == case.param]


def _invoke(args: list[str], env: dict[str, str | None]) -> Any:
    result = CliRunner().invoke(app, args, env={"COLUMNS": "300", "NO_COLOR": "1", **env})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output, result.output
    return result


@pytest.mark.parametrize("path", [c for c, _ in _commands(typer.main.get_command(app), [])])
def test_dash_h_is_help_on_every_command(path: list[str]) -> None:
    result = _invoke([*path, "-h"], {})
    assert result.exit_code == 0 and "Usage:" in result.output, result.output


VARIABLES = sorted(
    name.upper() if name.startswith("MAESTRO_") else f"MAESTRO_{name.upper()}"
    for name in Settings.model_fields
)


@pytest.mark.parametrize("variable", VARIABLES)
def test_an_empty_or_garbage_variable_is_one_line_naming_it(variable: str, place: Path) -> None:
    field = Settings.model_fields[variable.removeprefix("MAESTRO_").lower()]
    garbage = {Path: str(place / "file.txt"), str: "", str | None: ""}.get(
        field.annotation, "\x01garbage\x02"
    )
    for value in {"", garbage}:
        env = {"MAESTRO_HOME": str(place / "home"), variable: value}
        result = _invoke(["runs", "list"], env)
        assert result.exit_code != 0, f"{variable}={value!r} was accepted:\n{result.output}"
        assert variable in result.output or variable.removeprefix("MAESTRO_") in result.output


@pytest.mark.parametrize("home", ["{tmp}/file.txt", "{tmp}/file.txt/sub", "/proc/nope"])
def test_an_unusable_home_is_one_line_naming_maestro_home(home: str, place: Path) -> None:
    result = _invoke(["runs", "list"], {"MAESTRO_HOME": home.replace("{tmp}", str(place))})
    assert result.exit_code == 2 and "MAESTRO_HOME" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1
