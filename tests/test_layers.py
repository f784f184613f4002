"""The layers import one way (.ci/check_imports.py, README "Layout")."""

import importlib.util
from pathlib import Path

spec = importlib.util.spec_from_file_location(
    "check_imports", Path(__file__).parent.parent / ".ci" / "check_imports.py"
)
check_imports = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_imports)


def test_the_tree_imports_one_way(capsys):
    assert check_imports.main() == 0, capsys.readouterr().out


def test_it_refuses_an_upward_or_sideways_import():
    assert check_imports.problem("licenses", "", "devices.models")
    assert check_imports.problem("devices", "", "usage.models")
    assert check_imports.problem("usage", "", "portal.summaries")
    assert check_imports.problem("api", "", "portal.access")
    assert check_imports.problem("portal", "", "client.dls_client.sdk")
    assert check_imports.problem("client", "dls_client", "licenses.clock")


def test_it_allows_downward_imports():
    assert check_imports.problem("usage", "", "devices.models") is None
    assert check_imports.problem("portal", "", "usage.exports") is None
    assert check_imports.problem("dls_admin", "", "api.device") is None
    assert check_imports.problem("client", "tools", "usage.jobs") is None


def test_a_model_looked_up_by_name_counts_as_an_import():
    import ast

    tree = ast.parse('from django.apps import apps\napps.get_model("api", "ApiToken")\nget_model("usage.Job")')
    found = [target for _, target in check_imports.imported(tree)]
    assert found == ["django.apps", "api.models", "usage.models"]
    assert check_imports.problem("portal", "", found[1])  # a sibling's model through the registry
