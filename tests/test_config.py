"""Config validation: errors name the key and the line; `init` writes a config that validates."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from analytics.config import ConfigError, load_config, parse_duration
from tests import cli_inprocess


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m analytics.cli.main`` as tests/cli_inprocess.py runs it, in this process."""
    return cli_inprocess.run(args, cwd=cwd)


def test_unknown_key_names_key_and_line(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("services:\n  - name: pay\n    team: t\n  - name: shop\n    teem: web\n")
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    # "teem" sits on line 5 under the second service
    assert "line 5" in str(err.value) and "services.1.teem" in str(err.value)


def test_bad_value_names_key_and_line(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("incidents:\n  max_attribution_gap: soon\n")
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    assert "line 2" in str(err.value) and "incidents.max_attribution_gap" in str(err.value)


def test_invalid_yaml_reports_line(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("services:\n  - name: [unclosed\n")
    with pytest.raises(ConfigError, match="line 3"):
        load_config(cfg)


def test_durations() -> None:
    assert parse_duration("7d") == timedelta(days=7)
    assert parse_duration("36h") == timedelta(hours=36)
    assert parse_duration(2) == timedelta(hours=2)
    with pytest.raises(ValueError):
        parse_duration("tomorrow")


def test_init_writes_annotated_valid_config_and_refuses_overwrite(tmp_path: Path) -> None:
    done = _cli("init", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "gitops-dora.yaml").read_text()
    assert "# " in text and "max_attribution_gap" in text
    config = load_config(tmp_path / "gitops-dora.yaml")
    assert config.service("payments") is not None
    assert config.production_environments() == ["production"]
    again = _cli("init", cwd=tmp_path)
    assert again.returncode == 2
    assert again.stderr.strip().startswith("error:") and "already exists" in again.stderr
    assert "Traceback" not in again.stderr


def test_missing_explicit_config_is_one_line_without_traceback(tmp_path: Path) -> None:
    bad = _cli("--config", "missing.yaml", "init", "x.yaml", cwd=tmp_path)
    assert bad.returncode == 2 and "missing.yaml" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
