"""tokenspec-cost: a raw response, a stream capture or a log in; usage, card, cost and breakdown out."""

from __future__ import annotations

import importlib
import io
import json
import tomllib
from pathlib import Path

import pytest

from impls._bodies import body_for, stream_for
from reference.cost_cli import main
from reference.usage import Usage

SONNET = Usage(input_uncached=50, cache_read=10_000, cache_write_1h=2048, output=500, web_searches=2)
# 50 * 3 + 10000 * 0.30 + 2048 * 6 + 500 * 15 = 150 + 3000 + 12288 + 7500 micro$ + 2 searches at $0.01 = $0.042938


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_body_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "response.json"
    path.write_text(json.dumps(body_for(SONNET, "claude-sonnet-4-5-20250929")[1]))
    code, out, _ = _run(capsys, str(path), "--json")
    row = json.loads(out)
    assert code == 0 and row["cost"] == "0.042938" and row["card"]["model"] == "claude-sonnet-4-5"
    assert row["model"] == "claude-sonnet-4-5-20250929" and row["format"] == "anthropic.messages"
    assert row["breakdown"]["web_search"] == "0.02" and row["usage"]["cache_write_1h"] == 2048


def test_stdin_table_and_tier(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    body = body_for(Usage(input_uncached=1000, output=200), "claude-haiku-4-5")[1]
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(body)))
    code, out, _ = _run(capsys, "-", "--tier", "batch")
    # batch: 1000 * 0.5 + 200 * 2.5 = 1000 micro$
    assert code == 0 and "cost        $0.001" in out and "batch" in out and "-> card claude-haiku-4-5" in out


def test_a_stream_as_sse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, events = stream_for(Usage(input_uncached=25, cache_read=4000, output=95), "claude-haiku-4-5")
    path = tmp_path / "stream.txt"
    path.write_text("".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events))
    code, out, _ = _run(capsys, str(path), "--json")
    # 25 * 1 + 4000 * 0.10 + 95 * 5 = 25 + 400 + 475 micro$
    assert code == 0 and json.loads(out)["cost"] == "0.0009"


def test_a_log_with_an_unknown_usage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = [body_for(Usage(input_uncached=1000, output=100), "gpt-5")[1],
             {"object": "chat.completion", "model": "gpt-5", "choices": []},
             {"body": body_for(Usage(input_uncached=1000, output=100), "gpt-5")[1], "date": "2026-03-15"}]
    path = tmp_path / "log.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    code, out, _ = _run(capsys, str(path), "--json")
    summary = json.loads(out)
    # 1000 * 1.25 + 100 * 10 = 2250 micro$ each
    assert code == 0 and (summary["priced"], summary["usage_unknown"], summary["cost"]) == (2, 1, "0.0045")


def test_unknown_usage_is_said(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"object": "chat.completion", "model": "gpt-5", "choices": []}))
    code, out, _ = _run(capsys, str(path))
    assert code == 0 and "usage       unknown" in out and "not $0" in out


def test_the_date_picks_the_card(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(body_for(Usage(input_uncached=300_000, output=1000), "claude-sonnet-4-6")[1]))
    assert json.loads(_run(capsys, str(path), "--json", "--date", "2026-02-20")[1])["cost"] == "1.8225"
    assert json.loads(_run(capsys, str(path), "--json", "--date", "2026-03-02")[1])["cost"] == "0.915"


BAD = {  # name: (file content, fragment the one line names)
    "negative count": (json.dumps({"model": "gpt-5", "object": "chat.completion",
                                   "usage": {"prompt_tokens": -1, "completion_tokens": 1}}), "usage.prompt_tokens"),
    "unknown model": (json.dumps(body_for(Usage(output=1), "gpt-5")[1]).replace('"gpt-5"', '"gpt-9"'), "model"),
    "not json": ("{not json", "line 1"),
    "no model": (json.dumps({"usage": {"inputTokens": 1, "outputTokens": 1}}), "model"),
    "bad log line": (json.dumps(body_for(Usage(output=1), "gpt-5")[1]) + "\n{oops\n", "line 2"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_input_exits_2_with_one_line(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text, fragment = BAD[name]
    path = tmp_path / "bad.json"
    path.write_text(text)
    code, out, err = _run(capsys, str(path))
    assert code == 2 and out == "" and err.count("\n") == 1 and fragment in err, err


def test_bad_date_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(body_for(Usage(output=1), "gpt-5")[1]))
    code, _, err = _run(capsys, str(path), "--date", "March")
    assert code == 2 and "--date" in err


@pytest.mark.parametrize(("argv", "fragment"), [(("--tier", "gold"), "--tier"), (("--format", "xml"), "--format"),
                                                (("--bogus",), "--bogus"), (("a.json", "b.json"), "b.json")])
def test_wrong_arguments_exit_2_with_one_line(argv: tuple[str, ...], fragment: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    out, err = capsys.readouterr()
    assert exited.value.code == 2 and out == "" and err.count("\n") == 1 and fragment in err, err


@pytest.mark.parametrize(("tier", "fragment"), [("batch", "--tier: usage reports service tier 'flex'"),
                                                ("priority", "--tier: usage reports service tier 'flex'")])
def test_a_tier_against_the_payload_names_both(tier: str, fragment: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    body = {**body_for(Usage(input_uncached=3, output=5), "gpt-5")[1], "service_tier": "flex"}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(body))
    assert _run(capsys, str(path), "--json")[0] == 0  # the payload's flex alone prices
    code, out, err = _run(capsys, str(path), "--tier", tier)
    assert code == 2 and out == "" and err.count("\n") == 1 and fragment in err and tier in err, err


def test_a_tier_the_card_lacks_names_the_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(body_for(Usage(input_uncached=3, output=5), "claude-sonnet-4-5")[1]))
    code, _, err = _run(capsys, str(path), "--tier", "priority")
    assert code == 2 and err.startswith("tokenspec-cost: --tier:") and "priority" in err, err


def test_the_console_script_names_this_main() -> None:
    scripts = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, attr = scripts["tokenspec-cost"].partition(":")
    assert getattr(importlib.import_module(module), attr) is main
