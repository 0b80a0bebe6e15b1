"""Options objects: every parameter of a stage, its default, documentation and check in one place.

A stage's parameters (solving, extraction, calibration) are the fields of one
frozen dataclass built with :func:`option`. Each field carries its numpydoc
type line, its description and the check from :mod:`skysolve._args` that
validates and normalises it; :meth:`Options.__post_init__` runs the checks
(and the class's :meth:`Options._check_together` for rules between fields).

From that one definition :func:`with_options` builds the public function or
method that takes the parameters as keyword arguments (in field order, also
positionally unless a field is declared keyword-only), with a real signature
and a generated "Parameters" section for ``help()`` and IDEs. Adding a
parameter means adding one field.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import inspect
import textwrap
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

from .errors import InvalidTypeError

__all__ = ["Options", "option", "with_options", "parameters_doc", "check_defaults",
           "named", "shown_name"]

T = TypeVar("T", bound="Options")
R = TypeVar("R")


def option(default: Any, *, type: str, doc: str,
           check: Callable[[Any, str], Any] | None = None, keyword_only: bool = False) -> Any:
    """A field of an :class:`Options` class.

    Parameters
    ----------
    default : Any
        Default value (immutable).
    type : str
        The numpydoc type line, e.g. ``"float, optional"``.
    doc : str
        What the parameter does, with units and conventions.
    check : callable, optional
        ``check(value, name) -> value``: validates and normalises; raises an
        error naming ``name``.
    keyword_only : bool
        The public function takes it by keyword only (declare such fields
        after all the others): parameters tetra3rs has as keyword-only, and
        skysolve's own additions, so that positional calls written for
        tetra3rs mean the same.
    """
    return dataclasses.field(default=default, metadata={
        "type": type, "doc": doc, "check": check, "keyword_only": keyword_only})


@dataclasses.dataclass(frozen=True)
class Options:
    """Base of the options classes: checks every field when created."""

    #: Fields that are not parameters of the public function (none by default).
    _internal: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        for name, default, check in _checks(type(self)):
            value = getattr(self, name)
            if value is default:
                continue  # defaults are valid and canonical (the tests check them once)
            new = check(value, name)
            if new is not value:
                object.__setattr__(self, name, new)
        self._check_together()

    def _check_together(self) -> None:
        """Rules between fields (subclasses override)."""

    def replace(self: T, **changes: Any) -> T:
        """A copy with some parameters changed (checked again)."""
        _refuse_unknown(type(self), changes, f"{type(self).__name__}.replace()")
        return dataclasses.replace(self, **changes)

    @classmethod
    def check_value(cls, field: str, value: Any, name: str | None = None) -> Any:
        """``value`` checked and normalised as the field ``field`` would be.

        Errors name ``name`` (default: the field), for public functions and
        command-line flags that call a field by another name.
        """
        check = {f.name: f for f in dataclasses.fields(cls)}[field].metadata.get("check")
        return value if check is None else check(value, name or field)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The parameter names, in order."""
        return _names(cls)

    def as_dict(self) -> dict[str, Any]:
        """Every parameter and its value (shallow)."""
        return {n: getattr(self, n) for n in self.names()}


@functools.cache
def _names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls) if f.name not in cls._internal)


@functools.cache
def _positional(cls: type) -> tuple[str, ...]:
    """The leading fields that may also be passed positionally (before any keyword-only)."""
    fields = [f for f in dataclasses.fields(cls) if f.name not in cls._internal]
    kw = [f.metadata.get("keyword_only", False) for f in fields]
    n = kw.index(True) if True in kw else len(fields)
    if any(not k for k in kw[n:]):
        raise TypeError(f"{cls.__name__}: keyword-only fields must come after all the others")
    return tuple(f.name for f in fields[:n])


@functools.cache
def _name_set(cls: type) -> frozenset[str]:
    return frozenset(_names(cls))


@functools.cache
def _checks(cls: type) -> tuple[tuple[str, Any, Callable[[Any, str], Any]], ...]:
    """``(name, default, check)`` of every checked field (computed once per class)."""
    return tuple((f.name, f.default, f.metadata["check"]) for f in dataclasses.fields(cls)
                 if f.metadata.get("check") is not None)


#: What the parameters are called where the user gave them (:func:`named`).
_SHOWN_NAMES: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "skysolve_shown_names", default=None)


@contextlib.contextmanager
def named(names: Mapping[str, str]) -> Iterator[None]:
    """Within the block (in this thread or task), advice of the library that names a
    parameter gives it the name ``names`` maps it to (:func:`shown_name`): a command
    line's flag, where the user gave ``--max-magnitude``, not ``star_max_magnitude=``."""
    token = _SHOWN_NAMES.set(names)
    try:
        yield
    finally:
        _SHOWN_NAMES.reset(token)


def shown_name(name: str) -> str:
    """The parameter ``name`` as the caller knows it (see :func:`named`; else ``name``)."""
    names = _SHOWN_NAMES.get()
    return name if names is None else names.get(name, name)


def check_defaults(cls: type[Options]) -> None:
    """Raise if a field's default does not pass its own check unchanged (for the tests)."""
    for name, default, check in _checks(cls):
        got = check(default, name)
        if not (got is default or got == default):
            raise AssertionError(f"{cls.__name__}.{name}: default {default!r} is not canonical "
                                 f"({got!r})")


def _refuse_unknown(cls: type, kwargs: dict[str, Any], where: str) -> None:
    names = _name_set(cls)
    for key in kwargs:
        if key not in names:
            raise InvalidTypeError(f"{where} got an unexpected keyword argument {key!r}")


def parameters_doc(cls: type[Options], indent: str = "") -> str:
    """numpydoc entries (``name : type`` and the indented description) of every field."""
    out = []
    for f in dataclasses.fields(cls):
        if f.name in cls._internal:
            continue
        body = textwrap.indent(textwrap.dedent(f.metadata["doc"]).strip(), "    ")
        out.append(f"{f.name} : {f.metadata['type']}\n{body}")
    return textwrap.indent("\n".join(out), indent)


_REQUIRED = inspect.Parameter.empty

def _put(memo: dict, order: deque, size: int, key: Any, value: Any) -> None:
    """``memo[key] = value`` for a ``key`` not held; a full memo (``size`` entries) drops
    its oldest, kept first in ``order``.

    One entry at a time, not the whole memo: a loop whose FOV estimate changes every
    call adds an entry every call, and clearing all 64 options at once every 64th call
    freed them in one go (a periodic spike of tens of us) and lost the entries made just
    before it. The order is a deque: deleting a dictionary's first entry again and again
    leaves a run of dead slots that finding the first one walks (0.95 us an entry,
    against 0.3 for the clearing); a dict subclass slowed every lookup."""
    if len(memo) >= size:
        del memo[order.popleft()]
    memo[key] = value
    order.append(key)


#: Options built from plain values are kept for reuse (see :func:`_options_of`).
_BUILT: dict[tuple, Options] = {}
_BUILT_ORDER: deque = deque()
_BUILT_MAX = 64
_PLAIN = (bool, int, float, str, type(None))


def _plain_key(value: Any) -> Any:
    """A key that tells ``value`` apart by type as well as by value (``1``, ``1.0`` and
    ``True`` compare equal but may check differently), or None when ``value`` is not
    a plain scalar or a tuple of them."""
    kind = type(value)
    if kind in _PLAIN:
        return kind, value
    if kind is tuple:
        # (a loop, not a generator of calls: a pair's key (image_shape, a position hint
        # new every frame) is taken twice a call)
        keys = []
        for v in value:
            key = (type(v), v) if type(v) in _PLAIN else _plain_key(v)
            if key is None:
                return None
            keys.append(key)
        return tuple, tuple(keys)
    return None


@functools.cache
def _defaults(cls: type) -> tuple[dict[str, Any], frozenset[str]] | None:
    """Every field's default and the field names; None when a field has no plain default
    (its instances are then made by the dataclass's own ``__init__``)."""
    out = {}
    for f in dataclasses.fields(cls):
        if not f.init or f.default is dataclasses.MISSING:
            return None
        out[f.name] = f.default
    return out, frozenset(out)


@functools.cache
def _check_order(cls: type) -> dict[str, tuple[int, Any, Callable[[Any, str], Any]]]:
    """``name -> (position, default, check)`` of every checked field (see :func:`_checks`)."""
    return {name: (i, default, check) for i, (name, default, check) in enumerate(_checks(cls))}


@functools.lru_cache(maxsize=64)
def _given_checks(cls: type, names: tuple[str, ...]
                  ) -> tuple[tuple[str, Any, Callable[[Any, str], Any]], ...]:
    """``(name, default, check)`` of the checked fields among ``names``, in field order
    (as :meth:`Options.__post_init__` checks them): made once per class and argument
    names, as a loop over frames passes the same names every call (sorting them cost
    ~1.5 us a solve)."""
    order = _check_order(cls)
    return tuple((n, *order[n][1:]) for n in sorted((n for n in names if n in order),
                                                      key=lambda n: order[n][0]))


#: Checked values of plain arguments: ``(class, field, _plain_key(value)) -> checked value``
#: (checks are pure functions of the value; a value that fails, and a checked value that
#: is not itself plain, are never stored).
_CHECKED: dict[tuple, Any] = {}
_CHECKED_ORDER: deque = deque()
_CHECKED_MAX = 256


def _new(cls: type[T], kwargs: dict[str, Any], keys: dict[str, Any] | None = None) -> T:
    """``cls(**kwargs)``, checked alike, without the frozen dataclass ``__init__``: it sets
    each of some thirty fields through ``object.__setattr__`` (~9 us, a few percent of a
    small-field solve whose FOV estimate changes from call to call).

    Only the fields given can differ from their (valid) defaults, so only they are
    checked, in field order as :meth:`Options.__post_init__` does, and a plain value
    (``keys``: its :func:`_plain_key`) that passed its field's check before takes the
    checked value again: a loop over frames changes one or two arguments (the FOV
    estimate) and passes the others unchanged."""
    plain = _defaults(cls)
    if plain is None or not plain[1].issuperset(kwargs):
        return cls(**kwargs)  # (an unknown name: the dataclass's own TypeError)
    opts = object.__new__(cls)
    values = opts.__dict__
    values.update(plain[0])
    values.update(kwargs)
    if type(opts).__post_init__ is not Options.__post_init__:
        opts.__post_init__()  # a class that checks more than its fields
        return opts
    for name, default, check in _given_checks(cls, tuple(kwargs)):
        value = values[name]
        if value is default:
            continue
        key = None if keys is None else keys.get(name)
        if key is None:
            new = check(value, name)
        else:
            memo = (cls, name, key)
            new = _CHECKED.get(memo, _UNCHECKED)
            if new is _UNCHECKED:
                new = check(value, name)
                if _plain_key(new) is not None:  # (an array or an object is not shared)
                    _put(_CHECKED, _CHECKED_ORDER, _CHECKED_MAX, memo, new)
        values[name] = new
    opts._check_together()
    return opts


_UNCHECKED = object()


def _options_of(cls: type[T], kwargs: dict[str, Any]) -> T:
    """``cls(**kwargs)``; the same (immutable) object again for the same plain arguments.

    Checking every field costs about a tenth of a small-field solve, and a loop over
    frames passes the same arguments every time. Arguments that are not plain
    scalars (arrays, camera models, times) are checked afresh on every call.
    """
    # (a plain scalar's key written out: the call per argument cost ~1 us a solve)
    keys = {k: (type(v), v) if type(v) in _PLAIN else _plain_key(v) for k, v in kwargs.items()}
    if None in keys.values():
        return _new(cls, kwargs, keys)
    key = (cls, *sorted(keys.items()))
    opts = _BUILT.get(key)
    if opts is None:
        opts = _new(cls, kwargs, keys)
        _put(_BUILT, _BUILT_ORDER, _BUILT_MAX, key, opts)
    return opts



def with_options(cls: type[Options], leading: Sequence[str | tuple[str, Any]], doc: str,
                 accept_options: bool = True,
                 keywords: Sequence[tuple[str, Any]] | None = None,
                 ) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Decorate ``impl(*leading, options)`` into the public function taking the fields.

    The public function has the signature ``(*leading, <fields with defaults>,
    [options=None])``; a leading parameter is a name, or ``(name, default)``.
    Fields declared ``keyword_only`` are keyword-only; ``options`` is taken by name, or
    positionally when it is the only argument after the leading ones.
    ``doc`` is its docstring, in which ``{parameters}`` is replaced by the
    fields' numpydoc entries. With ``accept_options``, a ready ``options=``
    instance may be passed (also positionally, right after the leading parameters), and
    keyword arguments then override its values.

    With ``keywords`` (``(name, default)`` pairs) the signature is
    ``(*leading, *, <keywords>, <fields>, [options=None])``: everything after
    the leading parameters is keyword-only, and ``impl(*leading, options,
    **keywords)`` receives the keywords' values.
    """
    names = _names(cls)
    positional = _positional(cls) if keywords is None else ()
    fields = {f.name: f for f in dataclasses.fields(cls)}
    lead = [(n, _REQUIRED) if isinstance(n, str) else n for n in leading]
    leading = [n for n, _ in lead]
    n_lead = len(leading)
    own = dict(keywords or ())

    def decorate(impl: Callable[..., R]) -> Callable[..., R]:
        public = impl.__name__
        impl_params = inspect.signature(impl).parameters

        @functools.wraps(impl)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if len(args) < n_lead:
                rest = lead[len(args):]
                missing = [n for n, d in rest if d is _REQUIRED and n not in kwargs]
                if missing:
                    raise TypeError(f"{public}() missing required argument {missing[0]!r}")
                args = (*args, *(kwargs.pop(n, d) for n, d in rest))
            extra = args[n_lead:]
            if extra and accept_options and len(extra) == 1 and isinstance(extra[0], cls):
                # (a ready options object in the first field's place: what the caller means)
                if "options" in kwargs:
                    raise TypeError(f"{public}() got multiple values for argument 'options'")
                kwargs["options"], extra = extra[0], ()
            if len(extra) > len(positional):
                raise TypeError(f"{public}() takes at most {n_lead + len(positional)} "
                                f"positional arguments ({len(args)} given)")
            own_values = {n: kwargs.pop(n, d) for n, d in own.items()}
            for name, value in zip(positional, extra, strict=False):
                if name in kwargs:
                    raise TypeError(f"{public}() got multiple values for argument {name!r}")
                kwargs[name] = value
            base = kwargs.pop("options", None) if accept_options else None
            _refuse_unknown(cls, kwargs, f"{public}()")
            if base is None:
                opts = _options_of(cls, kwargs)
            elif not isinstance(base, cls):
                raise InvalidTypeError(
                    f"options must be a {cls.__name__}, got {type(base).__name__}")
            else:
                opts = base.replace(**kwargs) if kwargs else base
            return impl(*args[:n_lead], opts, **own_values)

        def annotation(name: str) -> Any:
            p = impl_params.get(name)
            return inspect.Parameter.empty if p is None else p.annotation

        params = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=d,
                                    annotation=annotation(n)) for n, d in lead]
        params += [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=d,
                                     annotation=annotation(n)) for n, d in own.items()]
        params += [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD
                                     if n in positional else inspect.Parameter.KEYWORD_ONLY,
                                     default=fields[n].default, annotation=fields[n].type)
                   for n in names]
        if accept_options:
            params.append(inspect.Parameter("options", inspect.Parameter.KEYWORD_ONLY,
                                            default=None, annotation=f"{cls.__name__} | None"))
        wrapper.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            params, return_annotation=inspect.signature(impl).return_annotation)
        wrapper.__doc__ = inspect.cleandoc(doc).replace("{parameters}", parameters_doc(cls))
        del wrapper.__wrapped__  # help() shows the generated signature, not impl's
        return wrapper

    return decorate
