"""import_license (SPEC section 5): the command and the service it shares with the admin."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command, load_command_class

from licenses.models import AuditLog, License, LicenseItem, Organization, Project
from licenses.services import LicenseFileError, import_license
from tests import factories
from tests.factories import license_file, row_counts, spec_example


def run_import(doc, monkeypatch=None) -> dict:
    out = io.StringIO()
    path = "-"
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(json.dumps(doc).encode())))
    call_command("import_license", path, stdout=out)
    return json.loads(out.getvalue())


@pytest.mark.django_db
def test_it_imports_the_spec_example_and_prints_the_contract_json(tmp_path):
    path = tmp_path / "license.json"
    path.write_text(json.dumps(spec_example()))
    out = io.StringIO()
    call_command("import_license", str(path), stdout=out)
    result = json.loads(out.getvalue())

    assert set(result) == {"license_id", "organization_id", "project", "license_key", "items"}
    project = Project.objects.get()
    assert result["license_id"] == "L-2026-0001"
    assert result["organization_id"] == "216998"
    assert result["project"] == "acme-web" == project.name
    assert result["license_key"] == project.license_key
    items = LicenseItem.objects.order_by("id")
    assert [i["id"] for i in result["items"]] == [str(i.pk) for i in items]
    assert all(isinstance(i["id"], str) for i in result["items"])
    assert [(i["product"], i["option"]) for i in result["items"]] == [
        ("dbr", "per_client_device"),
        ("dbr", "per_barcode_scan"),
        ("dwt", "per_page"),
        ("dwt", "per_barcode_scan"),
        ("dlr", "per_concurrent_device"),
        ("dbr", "per_server"),
        ("dwt", "per_domain"),
    ]
    # Every field of the file comes back as written.
    for written, printed in zip(spec_example()["items"], result["items"], strict=True):
        assert {k: printed[k] for k in written} == written


@pytest.mark.django_db
def test_it_creates_exactly_what_the_file_says(now):
    before = row_counts()
    import_license(spec_example(), now=now)
    after = row_counts()
    changed = {label: after[label] - before[label] for label in after if after[label] != before[label]}
    # One organization, project and license, seven items, the audit of the import and its event.
    assert changed == {
        "licenses.Organization": 1,
        "licenses.Project": 1,
        "licenses.License": 1,
        "licenses.LicenseItem": 7,
        "licenses.AuditLog": 2,  # organization.create and license.import
        "licenses.OutboxEvent": 1,  # license.created (SPEC 14)
    }
    license = License.objects.get()
    assert license.organization.name == "Acme Corp"
    assert license.starts_at == datetime(2026, 11, 1, tzinfo=UTC)
    assert license.expires_at == datetime(2027, 11, 1, tzinfo=UTC)
    assert license.status == "active"
    by_option = {(i.product, i.option): i for i in LicenseItem.objects.all()}
    seats = by_option["dbr", "per_client_device"]
    assert (seats.edition, seats.quantity, seats.period, seats.activation_basis, seats.device_grace_percent) == (
        "javascript",
        30,
        "yearly",
        "first_authorization",
        10,
    )
    assert by_option["dwt", "per_page"].quantities == {"core": 100000, "ocr": 5000}
    assert by_option["dwt", "per_page"].quantity is None
    assert by_option["dwt", "per_barcode_scan"].addon == "barcode_reader"
    assert by_option["dlr", "per_concurrent_device"].overuse_budget == 10000
    assert by_option["dbr", "per_server"].heartbeat_timeout_s == 600
    assert by_option["dwt", "per_domain"].domain == "*.example.com"
    assert {i.project_id for i in LicenseItem.objects.all()} == {Project.objects.get().pk}


@pytest.mark.django_db
def test_it_fills_the_defaults(now):
    doc = license_file(items=[{"product": "dbr", "option": "per_client_device", "quantity": 3}])
    del doc["starts_at"], doc["expires_at"]
    result = import_license(doc, now=now)
    license = License.objects.get()
    assert license.starts_at == now
    assert license.expires_at == now + timedelta(days=365)
    assert result["project"] == f"216998-{doc['license_id']}"
    item = LicenseItem.objects.get()
    assert (item.period, item.activation_basis, item.device_grace_percent) == ("yearly", "first_authorization", 10)
    assert result["items"][0]["period"] == "yearly"


@pytest.mark.django_db
def test_it_defaults_expiry_to_a_year_after_the_given_start(now):
    doc = license_file()
    del doc["expires_at"]
    import_license(doc, now=now)
    assert License.objects.get().expires_at == datetime(2027, 11, 1, tzinfo=UTC)


@pytest.mark.django_db
def test_it_reads_rfc3339_offsets_and_fractions(now):
    import_license(license_file(starts_at="2026-11-01T09:30:00.250+09:30", expires_at="2027-11-01t00:00:00z"), now=now)
    license = License.objects.get()
    assert license.starts_at == datetime(2026, 11, 1, 0, 0, 0, 250000, tzinfo=UTC)
    assert license.expires_at == datetime(2027, 11, 1, tzinfo=UTC)


@pytest.mark.django_db
def test_it_matches_the_organization_by_id_and_renames_it(now):
    factories.OrganizationFactory(id="216998", name="Acme Old Name")
    import_license(license_file(organization={"id": "216998", "name": "Acme Corp"}), now=now)
    assert Organization.objects.get().name == "Acme Corp"
    assert AuditLog.objects.filter(action="organization.rename").get().before == {
        "id": "216998",
        "name": "Acme Old Name",
    }


@pytest.mark.django_db
def test_it_keeps_the_name_of_a_known_organization_when_the_file_gives_only_its_id(now):
    factories.OrganizationFactory(id="216998", name="Acme Corp")
    import_license(license_file(organization={"id": "216998"}), now=now)
    assert Organization.objects.get().name == "Acme Corp"


@pytest.mark.django_db
def test_it_attaches_a_renewal_to_the_existing_project_and_keeps_the_key(now):
    first = import_license(license_file(project="acme-web"), now=now)
    renewal = import_license(
        license_file(project="acme-web", starts_at="2027-11-01T00:00:00Z", expires_at="2028-11-01T00:00:00Z"),
        now=now,
    )
    assert renewal["license_key"] == first["license_key"]
    project = Project.objects.get()
    assert project.items.count() == 2
    assert project.license_key == first["license_key"]
    assert set(project.items.values_list("license__license_id", flat=True)) == {
        first["license_id"],
        renewal["license_id"],
    }


@pytest.mark.django_db
def test_it_gives_the_same_project_name_of_another_organization_its_own_project(now):
    first = import_license(license_file(project="web"), now=now)
    other = import_license(license_file(project="web", organization={"id": "318822", "name": "Globex"}), now=now)
    assert other["license_key"] != first["license_key"]
    assert Project.objects.count() == 2


@pytest.mark.django_db
def test_it_reads_standard_input_with_a_dash(monkeypatch):
    result = run_import(license_file(license_id="L-STDIN"), monkeypatch)
    assert result["license_id"] == "L-STDIN"
    assert License.objects.filter(license_id="L-STDIN").exists()


def _valid_items():
    return [{"product": "dbr", "option": "per_client_device", "quantity": 5}]


BAD_FILES = [
    # (name, the file, the field the error names, a fragment of the rule)
    ("malformed json", '{"license_id": "L-1", "items": [', "file", "malformed JSON"),
    ("not an object", "[1, 2]", "file", "must be a JSON object"),
    (
        "duplicate key",
        '{"license_id": "L-1", "license_id": "L-2", "organization": {"id": "1", "name": "A"}, "items": []}',
        "file",
        "the key 'license_id' appears twice",
    ),
    ("nested too deeply", "[" * 100000 + "]" * 100000, "file", "malformed JSON"),
    (
        "unknown product",
        license_file(items=[{"product": "dxx", "option": "per_page"}]),
        "items[0].product",
        "unknown product",
    ),
    (
        "unknown option",
        license_file(items=[{"product": "dbr", "option": "per_hour", "quantity": 1}]),
        "items[0].option",
        "unknown option",
    ),
    (
        "forbidden option",
        license_file(items=[*_valid_items(), {"product": "dbr", "option": "per_page", "quantities": {"core": 1}}]),
        "items[1].option",
        "per_page applies only to dwt, not dbr",
    ),
    (
        "negative quantity",
        license_file(items=[{"product": "dbr", "option": "per_client_device", "quantity": -5}]),
        "items[0].quantity",
        "must be an integer >= 1",
    ),
    (
        "zero quantity",
        license_file(items=[{"product": "dbr", "option": "per_client_device", "quantity": 0}]),
        "items[0].quantity",
        "must be an integer >= 1",
    ),
    (
        "quantity as a string",
        license_file(items=[{"product": "dbr", "option": "per_client_device", "quantity": "30"}]),
        "items[0].quantity",
        "must be an integer >= 1, not a string",
    ),
    (
        "quantity as a float",
        license_file(items=[{"product": "dbr", "option": "per_client_device", "quantity": 2.5}]),
        "items[0].quantity",
        "must be an integer",
    ),
    (
        "quantity as a boolean",
        license_file(items=[{"product": "dbr", "option": "per_client_device", "quantity": True}]),
        "items[0].quantity",
        "not a boolean",
    ),
    (
        "page count not an integer",
        license_file(items=[{"product": "dwt", "option": "per_page", "quantities": {"core": "many"}}]),
        "items[0].quantities.core",
        "must be an integer >= 1",
    ),
    (
        "unknown page module",
        license_file(items=[{"product": "dwt", "option": "per_page", "quantities": {"fax": 10}}]),
        "items[0].quantities.fax",
        "unknown page module",
    ),
    (
        "a field not applying to the option",
        license_file(items=[{"product": "dwt", "option": "per_domain", "domain": "x.com", "quantity": 5}]),
        "items[0].quantity",
        "quantity does not apply to option per_domain",
    ),
    (
        "period on a scan item",
        license_file(items=[{"product": "dbr", "option": "per_barcode_scan", "quantity": 5, "period": "monthly"}]),
        "items[0].period",
        "period does not apply to option per_barcode_scan",
    ),
    (
        "missing quantity",
        license_file(items=[{"product": "dbr", "option": "per_client_device"}]),
        "items[0].quantity",
        "quantity is required for option per_client_device",
    ),
    (
        "unknown item field",
        license_file(items=[{"product": "dbr", "option": "per_client_device", "quantity": 5, "seats": 5}]),
        "items[0].seats",
        "unknown field",
    ),
    ("unknown top-level field", license_file(customer="x"), "customer", "unknown field"),
    (
        "bad period",
        license_file(items=[{"product": "dbr", "option": "per_client_device", "quantity": 1, "period": "weekly"}]),
        "items[0].period",
        "must be one of yearly",
    ),
    (
        "bad domain",
        license_file(items=[{"product": "dwt", "option": "per_domain", "domain": "exa mple.com"}]),
        "items[0].domain",
        "host name",
    ),
    (
        "public suffix as domain",
        license_file(items=[{"product": "dwt", "option": "per_domain", "domain": "*.github.io"}]),
        "items[0].domain",
        "github.io is a public suffix",
    ),
    (
        "null quantity",
        license_file(items=[{"product": "dbr", "option": "per_client_device", "quantity": None}]),
        "items[0].quantity",
        "must be an integer >= 1, not null",
    ),
    (
        "bad add-on name",
        license_file(items=[{"product": "dwt", "option": "per_page", "addon": "Bar Code", "quantities": {"core": 1}}]),
        "items[0].addon",
        "must be an add-on name of lower-case letters, digits and '_'",
    ),
    (
        "top-level domain as domain",
        license_file(items=[{"product": "dwt", "option": "per_domain", "domain": "COM"}]),
        "items[0].domain",
        "com is a public suffix, not a registrable domain",
    ),
    (
        "percent too large",
        license_file(
            items=[{"product": "dbr", "option": "per_client_device", "quantity": 1, "device_grace_percent": 1001}]
        ),
        "items[0].device_grace_percent",
        "must be an integer <= 1000",
    ),
    ("empty items", license_file(items=[]), "items", "non-empty list"),
    ("item not an object", license_file(items=["dbr"]), "items[0]", "must be an object"),
    ("no license_id", {k: v for k, v in license_file().items() if k != "license_id"}, "license_id", "required"),
    ("license_id a number", license_file(license_id=12), "license_id", "must be a non-empty string"),
    ("organization id a number", license_file(organization={"id": 216998, "name": "A"}), "organization.id", "string"),
    ("new organization without a name", license_file(organization={"id": "777"}), "organization.name", "required"),
    ("bad date", license_file(starts_at="2026-11-01"), "starts_at", "RFC 3339"),
    ("no offset", license_file(expires_at="2027-11-01T00:00:00"), "expires_at", "RFC 3339"),
    ("impossible date", license_file(expires_at="2027-02-30T00:00:00Z"), "expires_at", "not a valid date"),
    ("expires before starts", license_file(expires_at="2026-10-01T00:00:00Z"), "expires_at", "must be after starts_at"),
    ("expires at start", license_file(expires_at="2026-11-01T00:00:00Z"), "expires_at", "must be after starts_at"),
]


@pytest.mark.django_db
@pytest.mark.parametrize("name, doc, field, rule", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_it_refuses_a_bad_file_naming_the_field_and_changes_nothing(tmp_path, name, doc, field, rule):
    factories.OrganizationFactory(id="216998", name="Acme Corp")  # so the database is not empty
    path = tmp_path / "bad.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    before = row_counts()
    out = io.StringIO()
    with pytest.raises(CommandError) as e:
        call_command("import_license", str(path), stdout=out)
    assert str(e.value).startswith(f"{field}: "), str(e.value)
    assert rule in str(e.value)
    assert out.getvalue() == ""
    assert row_counts() == before


@pytest.mark.django_db
def test_it_refuses_a_license_id_already_imported_and_changes_nothing(now):
    import_license(license_file(license_id="L-DUP"), now=now)
    before = row_counts()
    with pytest.raises(LicenseFileError) as e:
        import_license(license_file(license_id="L-DUP", organization={"id": "318822", "name": "Globex"}), now=now)
    assert e.value.field == "license_id"
    assert "already imported" in e.value.message
    assert row_counts() == before
    assert not Organization.objects.filter(id="318822").exists()


@pytest.mark.django_db
def test_it_rolls_back_the_rename_and_project_when_a_late_item_fails(now):
    factories.OrganizationFactory(id="216998", name="Old Name")
    before = row_counts()
    doc = license_file(
        project="new-project",
        organization={"id": "216998", "name": "New Name"},
        items=[*_valid_items(), {"product": "dlr", "option": "per_domain", "domain": "x.com"}],
    )
    with pytest.raises(LicenseFileError) as e:
        import_license(doc, now=now)
    assert e.value.field == "items[1].option"
    assert row_counts() == before
    assert Organization.objects.get().name == "Old Name"


@pytest.mark.django_db
def test_it_rolls_back_when_the_database_refuses_an_item_midway(now, monkeypatch):
    """A failure after rows were written (here: the second item's save) leaves nothing behind."""
    from licenses import issuing

    real_save = issuing._save_item
    calls = []

    def failing_save(item, path):
        calls.append(path)
        if len(calls) == 2:
            raise LicenseFileError(path, "refused by the database")
        real_save(item, path)

    monkeypatch.setattr(issuing, "_save_item", failing_save)
    before = row_counts()
    with pytest.raises(LicenseFileError):
        import_license(license_file(items=_valid_items() * 2, organization={"id": "555", "name": "New"}), now=now)
    assert row_counts() == before


@pytest.mark.django_db
def test_it_prints_error_field_rule_on_stderr_and_exits_non_zero(tmp_path, capsys, monkeypatch):
    # run_from_argv closes the connections when done; the test still needs its own.
    monkeypatch.setattr("django.core.management.base.connections.close_all", lambda: None)
    path = tmp_path / "bad.json"
    path.write_text(
        json.dumps(license_file(items=[{"product": "dbr", "option": "per_page", "quantities": {"core": 1}}]))
    )
    command = load_command_class("licenses", "import_license")
    with pytest.raises(SystemExit) as exit_:
        command.run_from_argv(["manage.py", "import_license", str(path)])
    assert exit_.value.code != 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == "error: items[0].option: per_page applies only to dwt, not dbr"
    assert License.objects.count() == 0


@pytest.mark.django_db
def test_it_names_a_missing_file():
    with pytest.raises(CommandError, match="^file: cannot read"):
        call_command("import_license", "/nonexistent/license.json")


@pytest.mark.django_db
def test_it_accepts_bytes_with_a_byte_order_mark(now):
    result = import_license(b"\xef\xbb\xbf" + json.dumps(license_file(license_id="L-BOM")).encode(), now=now)
    assert result["license_id"] == "L-BOM"


@pytest.mark.django_db
def test_it_records_the_import_in_the_audit_log(now):
    user = factories.UserFactory(username="clerk", is_staff=True)
    result = import_license(license_file(), actor=user, now=now)
    entry = AuditLog.objects.get(action="license.import")
    assert (entry.actor, entry.actor_name, entry.object_id) == (user, "clerk", result["license_id"])
    assert entry.before is None
    assert entry.after["items"] == result["items"]
    assert "license_key" not in json.dumps(entry.after)
