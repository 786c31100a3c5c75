"""HTML forms read with the API's own models, so a page accepts exactly what
its JSON twin accepts, and says what is wrong next to the field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)

# what pydantic says, in words for a person filling in a form
PLAIN = {"string_pattern_mismatch": "use lowercase letters, digits and dashes, starting with a letter or digit",
         "string_too_short": "this is required", "missing": "this is required"}


async def fields(request: Request) -> dict[str, str]:
    """The form's fields without the CSRF token, stripped but for passwords,
    which are what was typed: the same as the CLI and the API take them."""
    form = await request.form()
    return {k: v if "password" in k else v.strip()
            for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}


def read(model: type[M], values: Mapping[str, object]) -> tuple[M | None, dict[str, str]]:
    """The model, or the message for each field that is wrong."""
    given = {k: v for k, v in values.items() if v != "" and k in model.model_fields}
    try:
        return model.model_validate(given), {}
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for e in exc.errors():
            name = str(e["loc"][0]) if e["loc"] else "form"
            errors.setdefault(name, PLAIN.get(e["type"], e["msg"]))
        return None, errors
