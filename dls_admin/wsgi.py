import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dls_admin.settings")
application = get_wsgi_application()
# The URLconf and every template loaded at a worker's boot rather than by its first requests
# (dls_admin.warmup: the cost each recycled worker's first customers paid, measured there).
from dls_admin.warmup import warm  # noqa: E402 (after the settings are configured)

warm()
# Everything loaded so far lives as long as the worker: out of the collector's reach, so that a
# full collection (gen 2) walks only what requests allocate.
gc.freeze()
