"""What a web worker loads at its boot rather than on its first requests (``dls_admin.wsgi``).

A gunicorn worker starts cold after every recycling (gunicorn.conf.py ``max_requests``). Two
things were paid by whichever customer came first:

- the URLconf (every view module, the API's routers): about 0.7 s more on the first request
  (0.5 s of CPU on this machine's kind), 15-19 ms like the next once imported at boot;
- each page's templates: Django's cached loader compiles a template the first time it is
  asked for, in each worker. The statistics page of a 100,000-device project took 140 ms on a
  worker's first request and 40 ms on the next (docs/benchmarks.md, "Pages and exports").

``warm`` does both: it imports the URLconf and compiles every template of the project's own
``templates/`` folder (the portal, its partials, the e-mails, the admin's overrides) into the
cached loader, where the first request finds them. A template that does not compile fails the
boot instead of a customer's page (``tests/test_warmup.py``)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.template import engines
from django.urls import get_resolver


def template_names() -> list[str]:
    """Every template file under the project's ``templates/`` folders (``TEMPLATES[...]["DIRS"]``),
    as the loader names them (relative, ``/``-separated), sorted."""
    names: set[str] = set()
    for backend in settings.TEMPLATES:
        folders: list[str | Path] = backend.get("DIRS", [])  # type: ignore[assignment]
        for folder in folders:
            root = Path(folder)
            names.update(
                path.relative_to(root).as_posix()
                for path in root.rglob("*")
                if path.is_file() and not path.name.startswith(".")
            )
    return sorted(names)


def warm() -> int:
    """Imports the URLconf and compiles every template of ``template_names`` with the project's
    template engine (its cached loader keeps them); the number of templates compiled."""
    get_resolver().url_patterns  # noqa: B018 (the import is the point)
    engine = engines["django"]
    names = template_names()
    for name in names:
        engine.get_template(name)
    return len(names)
