"""tokenspec-kv: its answers, its refusals, and a fuzz of malformed argument sets and configs.

The fuzz runs the CLI in-process (``main(argv)``) on at least 1,000 malformed argument sets and config files and
accepts only two outcomes: exit 0 with a correct answer (every JSON row recomputed from the reference), or exit 2
with one line on stderr that names the flag or config key it was given wrong. A few runs go through a real
subprocess, to see the exit status and streams a shell sees.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reference import kv_cache as ref
from reference.kv_cli import DTYPE_ALIASES, main
from reference.model_config import load_config, preset_names, shape_from_config

ROOT = Path(__file__).resolve().parents[2]
FUZZ_CASES = 1200


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def refused(argv: list[str], *fragments: str) -> str:
    code, out, err = run(argv)
    assert code == 2, f"{argv}: exit {code}, stdout {out[:200]!r}"
    assert out == "" and err.count("\n") == 1 and err.startswith("tokenspec-kv: error: "), err
    missing = [f for f in fragments if f not in err]
    assert not missing, f"{argv}: {err.strip()!r} does not name {missing}"
    return err


def answer(argv: list[str]) -> list[dict[str, Any]]:
    code, out, err = run([*argv, "--json"])
    assert code == 0 and err == "", err
    return list(json.loads(out))


# ---- answers ------------------------------------------------------------------------------------------------------

def test_table_and_json() -> None:
    rows = answer(["llama-3-8b", "--context", "131072"])
    assert rows[0]["kv_bytes"] == 16 * 2**30 and rows[0]["kv_GiB"] == 16.0 and rows[0]["kv_GB"] == 17.18
    code, out, _ = run(["llama-3-8b", "--context", "4096", "32768", "--batch", "100", "--gpu-gb", "80", "--params",
                        "8.03e9", "--weights-dtype", "float16", "--utilization", "1"])
    assert code == 0 and "True" in out and "False" in out and "GiB = 2^30 bytes" in out


def test_list_answers_in_json_too() -> None:
    code, out, _ = run(["--list", "--json"])
    assert code == 0 and json.loads(out) == preset_names()


def test_short_dtype_names_are_aliases_printed_as_torch_names() -> None:
    for alias, name in DTYPE_ALIASES.items():
        if name in ref.KV_FORMATS:
            assert answer(["llama-3-8b", "--kv-dtype", alias])[0]["kv_dtype"] == name


def test_block_size_and_prefix_tokens() -> None:
    """Llama-3-8B, 1000 tokens in blocks of 16: 63 blocks (1,008 slots); 8 sequences sharing a 500-token prefix
    share its 31 full blocks, so 7 × 31 blocks are saved."""
    row = answer(["llama-3-8b", "--context", "1000", "--batch", "8", "--block-size", "16", "--prefix-tokens",
                  "500"])[0]
    assert row["paged_kv_bytes"] == 8 * 1008 * 131_072
    assert row["prefix_shared_bytes"] == 7 * 31 * 16 * 131_072
    assert row["paged_kv_bytes_held"] == row["paged_kv_bytes"] - row["prefix_shared_bytes"]


def test_a_sliding_model_shares_no_prefix_it_no_longer_holds() -> None:
    """Mistral at 32K holds only the blocks of its last 4,096 tokens: a 1,000-token prefix is long gone."""
    row = answer(["mistral-7b-v0.1", "--context", "32768", "--batch", "8", "--block-size", "16", "--prefix-tokens",
                  "1000"])[0]
    assert row["prefix_shared_bytes"] == 0 and row["paged_kv_bytes"] == 8 * 4096 * 131_072


def test_the_engine_plan_columns() -> None:
    """80 GB at 0.9 with 16.06 GB of bfloat16 weights: (72e9 - 16.06e9) // 2 MiB blocks, one held back."""
    row = answer(["llama-3-8b", "--context", "8192", "--gpu-gb", "80", "--params", "8.03e9", "--block-size", "16"])[0]
    blocks = (72 * 10**9 - 16_060_000_000) // (16 * 131_072)  # a block: 16 tokens of every layer
    assert row["engine_blocks"] == blocks and row["engine_blocks_per_request"] == 512
    assert row["engine_max_sequences"] == (blocks - 1) // 512


# ---- refusals named in the issue ------------------------------------------------------------------------------------

def _config_file(tmp_path: Path, config: Any, name: str = "config.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(config))
    return str(path)


def test_the_issues_nonsense_is_refused(tmp_path: Path) -> None:
    refused(["llama-3-8b", "--context", "-4096"], "--context", "-4096", "between 1")
    refused(["llama-3-8b", "--batch", "-1"], "--batch", "-1")
    refused(["llama-3-8b", "--utilization", "2"], "--utilization", "'2'", "at most 1")
    refused(["llama-3-8b", "--gpu-gb", "80", "--params", "-7e9"], "--params", "-7e9")
    refused(["llama-3-8b", "--tp", "3"], "--tp 3", "8 kv heads", "3 ranks")
    llama = load_config("llama-3-8b")
    refused(["--config", _config_file(tmp_path, {**llama, "num_key_value_heads": 0})], "num_key_value_heads", "0")
    refused(["--config", _config_file(tmp_path, {**load_config("mistral-7b-v0.1"), "sliding_window": -4096})],
            "sliding_window", "-4096")
    refused(["--config", _config_file(tmp_path, {**llama, "num_hidden_layers": "32"})], "num_hidden_layers", "'32'")
    refused(["--config", _config_file(tmp_path, [llama])], "JSON object", "list")
    refused(["llama-3-8b", "--block-size", "0"], "--block-size", "0")
    refused(["llama-3-8b", "--prefix-tokens", "10"], "--prefix-tokens", "--block-size")
    refused(["llama-3-8b", "--context", "100", "--block-size", "16", "--prefix-tokens", "100"], "--prefix-tokens",
            "100")
    refused(["llama-3-8b", "--gpu-gb", "80", "--gpu-gib", "80"], "--gpu-gb", "--gpu-gib")
    refused(["no-such-model"], "no-such-model", "llama-3-8b")
    refused([], "--config")


# ---- the fuzz -------------------------------------------------------------------------------------------------------

BAD_NUMBERS = ["-1", "0", "-0", "1.5", "abc", "", " ", "nan", "inf", "-inf", "1e400", "1/0", "0x10", "9" * 60,
               "2e40", "--", "1,000", "١٢", "True", "None", "[]", "-9e9"]
INT_FLAGS = ["--context", "--batch", "--tp", "--block-size", "--prefix-tokens", "--in-flight-tokens"]
AMOUNT_FLAGS = ["--gpu-gb", "--gpu-gib", "--utilization", "--params", "--reserve-gb", "--graph-reserve-gb"]
DTYPE_FLAGS = ["--kv-dtype", "--weights-dtype"]
BAD_DTYPES = ["fp4", "float64", "FP16", "half", "", "int4x", "bfloat", "e4m3", "float8_e5m2"]
CONFIG_KEYS = ["num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim", "hidden_size",
               "sliding_window", "layer_types", "model_type", "use_sliding_window", "max_window_layers",
               "kv_lora_rank", "qk_rope_head_dim", "attn_layer_period", "attn_layer_offset", "mamba_expand",
               "mamba_d_conv", "mamba_d_state"]
BAD_VALUES: list[Any] = [0, -1, -4096, "32", 3.5, None, [], {}, True, False, 10**30, "x", [1, 2], float("nan")]


@dataclass
class Trial:
    argv: list[str]
    names: set[str] = field(default_factory=set)  # what a refusal must name (any one of them)
    config: Any = None  # the config written to --config, when one is


def _base(rng: random.Random) -> list[str]:
    argv = [rng.choice(preset_names()), "--context", str(rng.choice([1, 17, 4096, 131072]))]
    if rng.random() < 0.5:
        argv += ["--batch", str(rng.randint(1, 64))]
    if rng.random() < 0.4:
        argv += ["--gpu-gb", str(rng.choice([24, 80, 141])), "--params", "7e9"]
    if rng.random() < 0.4:
        argv += ["--block-size", str(rng.choice([1, 16, 256]))]
    return argv


def _mutate_args(rng: random.Random, trial: Trial) -> None:
    kind = rng.randrange(7)
    argv = trial.argv
    if kind == 0:
        flag = rng.choice(INT_FLAGS + AMOUNT_FLAGS)
        argv += [flag, rng.choice(BAD_NUMBERS)]
        trial.names.add(flag)
    elif kind == 1:
        flag = rng.choice(DTYPE_FLAGS)
        argv += [flag, rng.choice(BAD_DTYPES)]
        trial.names.add(flag)
    elif kind == 2:
        flag = rng.choice(["--bogus", "--ctx", "--contexts", "-x", "--json=1", "--list=yes"])
        argv.append(flag)
        trial.names.add(flag.split("=")[0])
    elif kind == 3:
        flag = rng.choice(INT_FLAGS + AMOUNT_FLAGS + DTYPE_FLAGS + ["--config"])
        argv.append(flag)  # no value
        trial.names.add(flag)
    elif kind == 4:
        name = rng.choice(["llama-3-9b", "../SOURCES", "SOURCES", "", "llama 3", "x" * 300])
        argv[0] = name
        trial.names |= {name[:40] or "preset", "preset"}
    elif kind == 5:
        argv += ["--tp", str(rng.choice([3, 5, 6, 7, 12, 24]))]
        trial.names.add("--tp")
    else:
        argv += ["--block-size", "16", "--prefix-tokens", str(rng.choice([4096, 10**6, 131072]))]
        trial.names.add("--prefix-tokens")


def _mutate_config(rng: random.Random, tmp: Path, n: int) -> Trial:
    config: Any = dict(load_config(rng.choice(preset_names())))
    path = tmp / f"fuzz-{n}.json"
    kind = rng.randrange(10)
    names = {"config"}
    if kind < 6:
        for _ in range(rng.randint(1, 2)):
            key = rng.choice(CONFIG_KEYS)
            config[key] = rng.choice(BAD_VALUES)
            names.add(key)
        path.write_text(json.dumps(config))
    elif kind == 6:
        key = rng.choice(["num_hidden_layers", "num_attention_heads"])
        del config[key]
        names.add(key)
        path.write_text(json.dumps(config))
    elif kind == 7:
        config = rng.choice([[config], "config", 42, None, True])
        path.write_text(json.dumps(config))
    elif kind == 8:
        path.write_text(rng.choice(["{", "", "{'a': 1}", "[" * 5000 + "]" * 5000, "{\"a\": 1,}", "NaN"]))
        config = None
    else:
        path.write_bytes(rng.choice([b"\xff\xfe\x00", b"\x80abc"]))
        config = None
    if rng.random() < 0.1:
        path = tmp / f"missing-{n}.json"
    argv = ["--config", str(path), "--context", str(rng.choice([1, 4096, 131072]))]
    return Trial(argv, names, config)


def _check_answer(trial: Trial, rows: list[dict[str, Any]]) -> None:
    """Exit 0 must be a correct answer: every row recomputed from the reference."""
    for row in rows:
        model = row["model"]
        config = trial.config if trial.config is not None and "--config" in trial.argv else load_config(model)
        shape = shape_from_config(config, model)
        want = ref.cache_bytes(shape, row["batch"], row["context"], row["kv_dtype"], row["tp"])
        assert row["kv_bytes"] == want, (trial.argv, row, want)
        assert row["kv_bytes_per_token"] == ref.bytes_per_token(shape, row["kv_dtype"], row["tp"])
        if "paged_kv_bytes" in row:
            assert row["paged_kv_bytes"] == row["batch"] * ref.paged_sequence_bytes(
                shape, row["context"], row["block_size"], row["kv_dtype"], row["tp"])
        assert row["kv_dtype"] in ref.KV_FORMATS


def _one(trial: Trial) -> str:
    argv = [*trial.argv, "--json"]
    try:
        code, out, err = run(argv)
    except BaseException as crash:  # a traceback is the one outcome that is never allowed
        raise AssertionError(f"{argv} raised {type(crash).__name__}: {crash}") from crash
    if code == 0:
        _check_answer(trial, json.loads(out))
        return "answered"
    assert code == 2, f"{argv}: exit {code}"
    assert out == "" and err.startswith("tokenspec-kv: error: ") and err.count("\n") == 1, (argv, out[:200], err)
    assert any(n in err for n in trial.names), f"{argv}: {err.strip()!r} names none of {sorted(trial.names)}"
    return "refused"


def test_fuzz_sees_only_correct_answers_or_one_line_refusals(tmp_path: Path) -> None:
    rng = random.Random(20260516)
    outcomes: dict[str, int] = {"answered": 0, "refused": 0}
    for n in range(FUZZ_CASES):
        if n % 3 == 2:
            trial = _mutate_config(rng, tmp_path, n)
        else:
            trial = Trial(_base(rng))
            for _ in range(rng.randint(1, 3)):
                _mutate_args(rng, trial)
        outcomes[_one(trial)] += 1
    assert sum(outcomes.values()) >= 1000
    assert outcomes["refused"] >= 900, outcomes  # the fuzz is malformed by construction; most must be refused
    print(f"tokenspec-kv fuzz: {outcomes}")


def test_real_subprocess_runs() -> None:
    def shell(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "reference.kv_cli", *argv], capture_output=True, text=True,
                              cwd=ROOT, timeout=60)

    ok = shell("llama-3-8b", "--context", "131072", "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)[0]["kv_bytes"] == 16 * 2**30 and ok.stderr == ""
    for argv, named in ((["llama-3-8b", "--context", "-1"], "--context"), (["llama-3-8b", "--utilization", "2"],
                                                                           "--utilization"),
                        (["llama-3-8b", "--tp", "3"], "--tp")):
        bad = shell(*argv)
        assert bad.returncode == 2 and bad.stdout == "" and bad.stderr.count("\n") == 1 and named in bad.stderr, bad
        assert "Traceback" not in bad.stderr
