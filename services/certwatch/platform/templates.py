"""Jinja2 environments for the HTML a service renders (PDF reports, web pages): one
configuration, so every template escapes, and fails loudly on a missing value, the same way."""

from __future__ import annotations

import jinja2


def environment(package: str, folder: str = "templates") -> jinja2.Environment:
    """Templates from `package`'s `folder`, autoescaped, an undefined name an error."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader(package, folder),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
