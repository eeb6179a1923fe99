"""How the kit's tasks read their command line: bare words, flags, and bad input that exits 2 with a ``fix:`` line.

``invoke server-up dev``, ``invoke server-up --env dev`` and ``invoke server-up`` (the current branch's
environment) all work, for every task that takes an environment; ``invoke run daily dev`` fills the run's
deployment, then its environment. A task says which of its parameters a bare word fills (``words``); by default
that is ``env`` when the task has one.

Built on invoke's public classes, with one adaptation:

- ``task`` is invoke's own decorator with ``klass=KitTask`` (its documented ``klass`` argument);
- a ``KitContext`` (a subclass of invoke's ``ParserContext``) holds ``KitArgument``s (invoke's ``Argument``,
  whose ``set_value`` turns a value the type refuses into exit 2) and a flag table that also answers for the
  words the task takes, and refuses an unknown flag;
- the adaptation (``install``): invoke's loader copies ``tasks.py``'s namespace into a plain ``Collection``, so
  ``Collection.to_contexts`` is wrapped to build ``KitContext``s for collections of ``KitTask``s. Nothing else
  of invoke is replaced (the parser, its arguments and the program are invoke's own).

What this relies on, beyond the names and signatures ``install`` checks at start: the parser asks
``token in context.flags`` first for each token, then takes ``context.flags[token]``, and sets a flag that takes
no value at once. invoke is pinned to the minor version this is tested on (``pyproject.toml``), and
``tests/test_arguments.py`` fails when an upgrade changes any of it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from invoke.collection import Collection
from invoke.exceptions import Exit
from invoke.parser.argument import Argument
from invoke.parser.context import ParserContext, to_flag
from invoke.program import Program
from invoke.tasks import Task
from invoke.tasks import task as invoke_task

from prefect_julia.core.patches import signature_is

EXIT_BAD_INPUT = 2
_KINDS = {int: "a whole number", float: "a number", bool: "nothing (it is a switch)", list: "a value"}


def refuse(message: str, fix: str) -> Exit:
    """An ``Exit`` that invoke prints as the kit's error: a message, a ``fix:`` line, exit code 2."""
    return Exit(f"error: {message}\n  fix: {fix}", code=EXIT_BAD_INPUT)


class KitTask(Task[Any]):
    """An invoke task that also names the parameters bare words fill, in order (``words``)."""

    def __init__(self, body: Callable[..., Any], *args: Any, words: Sequence[str] | None = None, **kwargs: Any):
        super().__init__(body, *args, **kwargs)
        params = self.argspec(self.body).parameters
        self.words: tuple[str, ...] = tuple(words) if words is not None else (("env",) if "env" in params else ())
        unknown = [w for w in self.words if w not in params]
        if unknown:
            raise TypeError(f"task {self.name}: words {unknown} are not parameters of {body.__name__}")


def task(*args: Any, **kwargs: Any) -> Any:
    """invoke's ``@task``, making a :class:`KitTask` (``words=`` is accepted besides invoke's own arguments)."""
    kwargs.setdefault("klass", KitTask)
    return invoke_task(*args, **kwargs)


class KitArgument(Argument):
    """An invoke ``Argument`` whose bad value exits 2, and which refuses a second, different value."""

    def __init__(self, *args: Any, task_name: str = "TASK", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.task_name = task_name
        self.given: list[str] = []  # how it was given, e.g. ["dev"] or ["--env prod"], for "given twice"

    @classmethod
    def adopt(cls, arg: Argument, task_name: str) -> KitArgument:
        return cls(
            task_name=task_name,
            names=arg.names,
            kind=arg.kind,
            default=arg.default,
            help=arg.help,
            positional=arg.positional,
            optional=arg.optional,
            incrementable=arg.incrementable,
            attr_name=arg.attr_name,
        )

    def give(self, value: Any, how: str) -> None:
        """Set the value from a bare word (``how``), refusing a second, different one."""
        self._note(value, how)
        self._set(value, cast=True)

    def set_value(self, value: Any, cast: bool = True) -> None:
        self._note(value, f"{self.flag} {value}")
        self._set(value, cast)

    @property
    def flag(self) -> str:
        return "--" + (self.name or "").replace("_", "-")

    def _note(self, value: Any, how: str) -> None:
        flag = self.flag
        if self.kind is not list and not self.incrementable and self.given and self.raw_value != value:
            raise refuse(
                f"{flag} is given twice: {self.given[0]} and {how}.",
                f"Give it once, e.g. `invoke {self.task_name} {value}` or `invoke {self.task_name} {flag} {value}`.",
            )
        self.given.append(how)

    def _set(self, value: Any, cast: bool) -> None:
        try:
            super().set_value(value, cast)
        except ValueError:
            flag = self.flag
            kind = _KINDS.get(self.kind, getattr(self.kind, "__name__", str(self.kind)))
            raise refuse(
                f"{flag} expects {kind}, not {value!r}.", f"`invoke --help {self.task_name}` lists its options."
            ) from None


class _Word(Argument):
    """What the flag table hands the parser for a bare word: a switch that gives the word to its parameter."""

    def __init__(self, word: str, target: KitArgument | None, task_name: str, via: str = "") -> None:
        super().__init__(names=(word,), kind=bool)
        self.word, self.target, self.task_name, self.via = word, target, task_name, via

    def set_value(self, value: Any, cast: bool = True) -> None:
        if self.target is None:
            raise refuse(
                f"`invoke {self.task_name}` takes no word {self.word!r}.",
                f"See `invoke --help {self.task_name}` for what it takes, or `invoke --list` for the tasks.",
            )
        if self.via:  # the value of a flag given a second time
            self.target.set_value(self.word)
        else:
            self.target.give(self.word, self.word)


class _UnknownFlag(Argument):
    def __init__(self, flag: str, task_name: str) -> None:
        super().__init__(names=(flag.lstrip("-"),), kind=bool)
        self.flag, self.task_name = flag, task_name

    def set_value(self, value: Any, cast: bool = True) -> None:
        raise refuse(
            f"`invoke {self.task_name}` has no option {self.flag}.",
            f"`invoke --help {self.task_name}` lists its options.",
        )


class _Flags(dict[str, Any]):
    """A task context's flag table that also answers for bare words and unknown flags.

    The parser asks ``token in flags`` for every token before anything else. A token while a flag waits for its
    value is that value; a word naming a task starts that task; any other word fills the next unset parameter of
    the task's ``words`` (or is refused when none is left); an unknown ``-x`` is refused. Everything else is
    invoke's own table (``real``).
    """

    def __init__(self, real: Any, context: KitContext) -> None:
        super().__init__()
        self.real = real
        self.context = context
        self.pending: tuple[KitArgument, int] | None = None  # the flag that takes a value, and its count then

    def _waiting(self) -> bool:
        return self.pending is not None and len(self.pending[0].given) == self.pending[1]

    def __contains__(self, token: object) -> bool:
        if not isinstance(token, str):
            return False
        if token in self.real:
            return True
        if self._waiting():  # the value of the flag before it: the parser's, unless it thinks the flag has one
            return self._second_value()
        if token.startswith("-"):
            return len(token) > 1 and token not in self.context.core_flags
        return self.context.word_target(token) is not False

    def _second_value(self) -> bool:
        """The parser takes no value for a flag that has one already (``--env`` after ``dev``): it is ours."""
        arg = self.pending[0] if self.pending else None
        return arg is not None and arg.kind is not list and arg.raw_value is not None

    def __getitem__(self, token: str) -> Any:
        if token in self.real:
            arg = self.real[token]
            self.pending = (arg, len(arg.given)) if arg.takes_value and isinstance(arg, KitArgument) else None
            return arg
        if self._waiting() and self.pending is not None:
            return _Word(token, self.pending[0], self.context.task, via=self.pending[0].flag)
        if token.startswith("-"):
            return _UnknownFlag(token, self.context.task)
        target = self.context.word_target(token)
        return _Word(token, target if isinstance(target, KitArgument) else None, self.context.task)

    def __getattr__(self, name: str) -> Any:  # aliases, aliases_of, ...: invoke's table answers
        if name in ("real", "context", "pending") or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.real, name)

    def __iter__(self) -> Any:
        return iter(self.real)

    def __len__(self) -> int:
        return len(self.real)

    def keys(self) -> Any:
        return self.real.keys()

    def values(self) -> Any:
        return self.real.values()

    def items(self) -> Any:
        return self.real.items()

    def get(self, key: str, default: Any = None) -> Any:
        return self.real.get(key, default)


class KitContext(ParserContext):
    """invoke's parser context of one task, with bare words filling the task's ``words`` in order."""

    def __init__(
        self,
        name: str,
        aliases: Iterable[str],
        args: Iterable[KitArgument],
        words: Sequence[str],
        task_names: frozenset[str],
        core_flags: frozenset[str],
    ) -> None:
        super().__init__(name=name, aliases=aliases, args=args)
        self.task = name
        self.words = tuple(words)
        self.task_names = task_names
        self.core_flags = core_flags
        self.flags = _Flags(self.flags, self)  # type: ignore[assignment]

    def word_target(self, word: str) -> KitArgument | bool | None:
        """The argument a bare ``word`` fills; None: the task takes no word; False: not a word (a task name).

        Once every word is given, a further one goes to the last (``invoke deploy --env dev prod``: given twice).
        """
        if word in self.task_names:
            return False
        args = [self.args[name] for name in self.words]
        for arg in args:
            if not arg.given:
                return arg  # type: ignore[no-any-return]
        return args[-1] if args else None


def kit_contexts(collection: Collection, ignore_unknown_help: bool | None = None) -> list[ParserContext]:
    """The parser contexts of ``collection``'s tasks: a :class:`KitContext` for each."""
    names = frozenset(name for primary, aliases in collection.task_names.items() for name in (primary, *aliases))
    core_flags = _core_flags()
    contexts: list[ParserContext] = []
    for primary, aliases in collection.task_names.items():
        task_ = collection[primary]
        given = task_.get_arguments(ignore_unknown_help=ignore_unknown_help)
        args = [KitArgument.adopt(arg, primary) for arg in given]
        contexts.append(KitContext(primary, aliases, args, getattr(task_, "words", ()), names, core_flags))
    return contexts


def install() -> bool:
    """Have invoke parse a collection of :class:`KitTask`s through :func:`kit_contexts`; False: left as it was.

    The one adaptation of invoke: its loader copies ``tasks.py``'s root namespace into a plain ``Collection``
    (``Collection.from_module`` instantiates its own class), so a ``Collection`` subclass cannot carry the
    contexts; ``Collection.to_contexts`` is wrapped instead, for collections holding a ``KitTask`` only. It is
    checked first (names and signatures); when a future invoke differs, nothing is changed and tasks keep
    invoke's plain parsing (``--env dev`` works, a bare ``dev`` does not).
    """
    current = Collection.to_contexts
    if getattr(current, "_prefect_julia", False):
        return True
    if not _contract_holds():
        return False

    @functools.wraps(current)
    def to_contexts(self: Collection, ignore_unknown_help: bool | None = None) -> list[ParserContext]:
        if any(isinstance(self[name], KitTask) for name in self.task_names):
            return kit_contexts(self, ignore_unknown_help)
        return current(self, ignore_unknown_help)

    to_contexts._prefect_julia = True  # type: ignore[attr-defined]
    Collection.to_contexts = to_contexts  # type: ignore[method-assign]
    return True


def _contract_holds() -> bool:
    """What :func:`install` and :class:`KitContext` rely on in invoke, by name and signature."""
    try:
        wanted: list[tuple[Callable[..., Any], list[str]]] = [
            (Collection.to_contexts, ["self", "ignore_unknown_help"]),
            (ParserContext.__init__, ["self", "name", "aliases", "args"]),
            (Argument.set_value, ["self", "value", "cast"]),
            (Task.get_arguments, ["self", "ignore_unknown_help"]),
        ]
        signatures_match = all(signature_is(fn, params) for fn, params in wanted)
        return signatures_match and all(hasattr(Collection, name) for name in ("task_names", "__getitem__"))
    except (TypeError, ValueError):
        return False


def _core_flags() -> frozenset[str]:
    """invoke's own flags (``--help``, ``--echo``, ...), which a person may give after a task name too."""
    program = Program()
    flags: set[str] = set()
    for arg in [*program.core_args(), *program.task_args()]:
        flags.update(to_flag(name) for name in arg.names)
    return frozenset(flags)
