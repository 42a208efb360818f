"""YAML sections built from dataclasses: a field's type (with its ``Annotated`` bounds), default and docstring become
the section field's, so each setting is defined once, in its dataclass, and validated with pydantic's errors.

    ModelSection = section("ModelSection", "The model.", ModelConfig, PolicyConfig, skip={(ModelConfig, "value_head")})
    ModelSection(name="tiny-test").build(ModelConfig, value_head=True)   # -> ModelConfig(name='tiny-test', ...)

A section may merge several dataclasses (their field names must not clash); a field whose type is a dataclass is
structure, not a setting, and is left out. Validating a section also builds each of its dataclasses, so their own
checks (``__post_init__``) reject a bad combination with their message.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import textwrap
import typing
from collections.abc import Collection, Iterator
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

__all__ = ["DataclassSection", "Section", "field_docs", "section", "settings"]


class Section(BaseModel):
    """A config section: unknown keys are errors, every field has a docstring, assignments are validated."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, validate_assignment=True)


class DataclassSection(Section):
    """A section made by :func:`section`; :meth:`build` gives back its dataclasses."""

    model_config = ConfigDict(use_attribute_docstrings=False)  # the docs come from the dataclasses
    sources: ClassVar[tuple[type, ...]] = ()

    @model_validator(mode="after")
    def _check(self) -> DataclassSection:
        for cls in self.sources:
            self.build(cls)  # runs the dataclass's own checks; a ValueError there names the fields
        return self

    def build(self, cls: type, **derived: Any) -> Any:
        """``cls`` made from this section's values of its fields, plus ``derived`` (the fields no key holds)."""
        own = {f.name for f in dataclasses.fields(cls)} & set(type(self).model_fields)
        return cls(**{name: getattr(self, name) for name in own}, **derived)


def field_docs(cls: type) -> dict[str, str]:
    """The docstring written under each field of a class, as one paragraph."""
    body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, after in itertools.pairwise(body):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def settings(cls: type) -> Iterator[tuple[str, Any, dataclasses.Field]]:
    """(name, annotation with its bounds, field) of each setting of a dataclass: the fields that are not dataclasses."""
    hints = typing.get_type_hints(cls, include_extras=True)
    for f in dataclasses.fields(cls):
        if not dataclasses.is_dataclass(hints[f.name]):
            yield f.name, hints[f.name], f


def section(name: str, doc: str, *sources: type, skip: Collection[tuple[type, str]] = ()) -> type[DataclassSection]:
    """A :class:`DataclassSection` holding every setting of ``sources`` but the ``(dataclass, field)`` in ``skip``."""
    fields: dict[str, Any] = {}
    for cls in sources:
        docs = field_docs(cls)
        for key, annotation, f in settings(cls):
            if (cls, key) in skip:
                continue
            if key in fields:
                raise TypeError(f"section {name}: {cls.__name__}.{key} clashes with another dataclass's {key}")
            default = ({"default_factory": f.default_factory} if f.default_factory is not dataclasses.MISSING
                       else {"default": f.default})
            fields[key] = (annotation, Field(**default, description=docs.get(key)))
    model = create_model(name, __base__=DataclassSection, __doc__=doc, **fields)
    model.sources = tuple(sources)
    return model
