"""Simultaneous imports: one license id is imported once; a new project shared by simultaneous
imports is created once and every import gets its key; nothing half-written is left."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from licenses.models import License, LicenseItem, Organization, Project
from licenses.services import LicenseFileError, import_license
from tests.factories import license_file

THREADS = 8


def run_at_once(docs, now):
    barrier = threading.Barrier(len(docs))
    results, errors = [], []

    def work(doc):
        try:
            barrier.wait()
            results.append(import_license(doc, now=now))
        except LicenseFileError as e:
            errors.append(e)
        except Exception as e:  # anything else is a bug the test must show
            errors.append(e)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(doc,)) for doc in docs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


@pytest.mark.django_db(transaction=True)
def test_it_imports_one_license_id_once_under_simultaneous_imports(now):
    docs = [
        license_file(license_id="L-RACE", project=f"p{n}", organization={"id": "777001", "name": "Racer"})
        for n in range(THREADS)
    ]
    results, errors = run_at_once(docs, now)
    assert len(results) == 1
    assert len(errors) == THREADS - 1
    assert all(isinstance(e, LicenseFileError) and e.field == "license_id" for e in errors), errors
    assert License.objects.count() == 1 and LicenseItem.objects.count() == 1
    assert Project.objects.count() == 1 and Organization.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_it_creates_a_shared_new_project_once_under_simultaneous_imports(now):
    docs = [license_file(project="shared", organization={"id": "777002", "name": "Racer"}) for _ in range(THREADS)]
    results, errors = run_at_once(docs, now)
    assert errors == []
    assert len(results) == THREADS
    assert len({r["license_key"] for r in results}) == 1
    assert Project.objects.get().license_key == results[0]["license_key"]
    assert LicenseItem.objects.count() == THREADS
