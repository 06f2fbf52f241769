"""The dependency rule is import-linter's contracts in pyproject.toml (`lint-imports`, which
`make check` runs): api and flows -> playbooks -> checks -> integrations -> models, models
importing neither FastAPI nor Prefect, nothing importing api but the CLI and the dev stack, no
cycles (imports inside functions count). The suite runs them too, and keeps them saying so."""

import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS: dict[str, dict[str, Any]] = {
    contract["id"]: contract
    for contract in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"][
        "contracts"
    ]
}


def test_the_contracts_say_the_rule() -> None:
    layers = CONTRACTS["layers"]["layers"]
    order = ["api | flows", "playbooks | alerts | oncall", "checks", "integrations", "models"]
    assert [layer for layer in layers if layer in order] == order
    below = CONTRACTS["no-web-no-prefect-below"]
    assert set(below["source_modules"]) >= {"models", "checks", "playbooks"}
    assert set(below["forbidden_modules"]) >= {"fastapi", "starlette", "prefect"}
    assert CONTRACTS["api-is-imported-by-the-cli-and-the-stack"]["forbidden_modules"] == ["api"]


def test_the_code_keeps_the_contracts() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    answer = subprocess.run(
        [str(lint_imports), "--no-cache"],
        cwd=ROOT,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert answer.returncode == 0, answer.stdout + answer.stderr


def test_no_script_shadows_a_package() -> None:
    """`python bench/x.py` puts bench/ first on the path: a bench/playbooks.py made the bench
    worker import itself instead of the playbooks package."""
    packages = {path.parent.name for path in ROOT.glob("*/__init__.py")}
    for folder in ("bench", "tests", "deployments"):
        scripts = {path.stem for path in (ROOT / folder).glob("*.py")}
        assert not scripts & packages, (folder, scripts & packages)
