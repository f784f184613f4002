import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dls_admin.settings")
application = get_wsgi_application()
# The URLconf (every view module, the API's routers) imported at a worker's boot rather than by
# its first request, which took about 0.7 s more (0.5 s of CPU on this machine's kind) after
# every recycling of a worker (gunicorn.conf.py max_requests); now 15-19 ms like the next.
get_resolver().url_patterns  # noqa: B018 (the import is the point)
