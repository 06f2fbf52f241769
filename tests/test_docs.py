"""The guides in docs/ that are generated from the code stay current, cover every playbook and
setting, and their curl examples are requests the API would accept."""

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.schemas.approvals import ApprovalCreate
from api.schemas.playbooks import ExecuteRequest
from intervene_cli.docgen import files
from intervene_cli.docgen.settings import env_name
from intervene_cli.main import app
from models.settings import SOURCE_ROOT, Settings
from playbooks.catalog import ACTIONS, ALIASES

DOCS = files.DOCS_DIR
CURL = re.compile(r'curl -X POST "(?P<url>[^"]+)" \\\n[^\n]*\\\n\s+-d \'(?P<body>[^\']*)\'')


def test_checked_in_generated_docs_are_current() -> None:
    problems = files.stale()
    assert not problems, files.check_message(problems)


def test_every_action_and_alias_has_a_section_in_the_playbooks_guide() -> None:
    text = (DOCS / "playbooks.md").read_text()
    missing = [name for name in [*ACTIONS, *ALIASES] if f"## `{name}`" not in text]
    assert missing == []


def test_every_setting_is_in_the_operations_guide() -> None:
    text = (DOCS / "operations.md").read_text()
    names = [env_name(name, field) for name, field in Settings.model_fields.items()]
    assert [name for name in names if f"`{name}`" not in text] == []


def test_generated_docs_hold_no_machine_paths() -> None:
    for target in files.targets():
        assert str(SOURCE_ROOT) not in target.render(), target.name


def curl_examples() -> list[tuple[str, dict[str, object]]]:
    text = (DOCS / "playbooks.md").read_text()
    return [(m["url"], json.loads(m["body"])) for m in CURL.finditer(text)]


def test_every_curl_example_is_a_request_the_api_accepts() -> None:
    examples = [(url, body) for url, body in curl_examples() if "action_type" in body]
    assert len(examples) >= 2 * (len(ACTIONS) + len(ALIASES))  # a dry-run and more for each
    for url, body in examples:
        envelope = ApprovalCreate if url.endswith("/approvals") else ExecuteRequest
        envelope.model_validate(body)  # no stray keys, right types
        name = str(body["action_type"])
        alias = ALIASES.get(name)
        spec = ACTIONS[alias.action_type if alias else name]
        params = {**body["params"], **(alias.fixed if alias else {})}  # type: ignore[dict-item]
        spec.params_model.model_validate(params)


def test_every_playbook_has_a_dry_run_example() -> None:
    previewed = {body["action_type"] for url, body in curl_examples() if url.endswith("/dry-run")}
    assert previewed == {*ACTIONS, *ALIASES}


@pytest.fixture
def docs_copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(DOCS, tmp_path / "docs"))


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["docs", *args])
    return result.exit_code, result.output


def test_docs_check_passes_on_the_checked_in_docs(docs_copy: Path) -> None:
    assert run("check", "--docs-dir", str(docs_copy)) == (0, "generated docs are up to date\n")


def test_docs_check_names_a_stale_generated_file_and_generate_fixes_it(docs_copy: Path) -> None:
    playbooks = docs_copy / "playbooks.md"
    playbooks.write_text(playbooks.read_text().replace("rerun_dbt", "rerun_dbtx", 1))
    code, output = run("check", "--docs-dir", str(docs_copy))
    assert code == 1
    assert "playbooks.md: stale" in output
    assert "operations.md" not in output
    assert "intervene docs generate" in output

    assert run("generate", "--docs-dir", str(docs_copy))[0] == 0
    assert playbooks.read_text() == (DOCS / "playbooks.md").read_text()
    assert run("check", "--docs-dir", str(docs_copy))[0] == 0


def test_generate_rewrites_only_the_marked_region_of_a_hand_written_guide(
    docs_copy: Path,
) -> None:
    operations = docs_copy / "operations.md"
    edited = operations.read_text().replace("| `INTERVENE_AUTH` |", "| `INTERVENE_AUTHX` |")
    operations.write_text(edited.replace("# Running Intervene", "# Running Intervene (edited)"))
    code, output = run("check", "--docs-dir", str(docs_copy))
    assert code == 1
    assert "operations.md: stale (the generated 'settings' section differs" in output

    assert run("generate", "--docs-dir", str(docs_copy))[0] == 0
    text = operations.read_text()
    assert "# Running Intervene (edited)" in text  # the prose is the author's
    assert "`INTERVENE_AUTHX`" not in text
    assert run("check", "--docs-dir", str(docs_copy))[0] == 0


def test_a_guide_without_its_markers_is_reported_not_overwritten(docs_copy: Path) -> None:
    operations = docs_copy / "operations.md"
    operations.write_text("# Operations\n\nno markers here\n")
    code, output = run("check", "--docs-dir", str(docs_copy))
    assert code == 1
    assert "<!-- BEGIN GENERATED: settings -->" in output
    (docs_copy / "playbooks.md").write_text("stale")
    assert run("generate", "--docs-dir", str(docs_copy))[0] == 2
    assert operations.read_text() == "# Operations\n\nno markers here\n"
    assert (docs_copy / "playbooks.md").read_text() == "stale"  # nothing written at all
