"""tokenspec-cost: what a response cost, from the reference, with the card it was priced on.

    tokenspec-cost response.json                  # a raw response body (any format the reference parses)
    tokenspec-cost stream.json                    # a stream capture: a JSON list of events, or SSE text
    curl ... | tokenspec-cost -                   # from stdin
    tokenspec-cost responses.jsonl --json         # a log: one response per line (or {"body": ..., "model": ...})
    tokenspec-cost batch-result.json --date 2026-02-20 --tier batch

Out: the canonical usage, the card used (the model id as resolved, its dates and source), the cost and its
breakdown; ``--json`` for scripts. A response without usage is reported as usage unknown, never as $0. Bad input
exits with status 2 and one line naming the field.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

from reference import billing as ref
from reference import usage as ref_usage

TIERS = {"batch": ref.BillingOptions(batch=True), "standard": ref.BillingOptions(service_tier="standard"),
         "flex": ref.BillingOptions(service_tier="flex"), "priority": ref.BillingOptions(service_tier="priority")}


def money(value: Decimal) -> str:
    """Dollars exactly, without trailing zeros or an exponent: 0.0045, 7500000000."""
    return format(value.normalize(), "f") if value else "0"


class BadInput(ValueError):
    """Input the command cannot price: the message is the one line it prints, naming the field."""


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line naming the argument (exit 2), like every other bad input."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {' '.join(message.split())} (see --help)\n")


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = OneLineParser(prog="tokenspec-cost", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", nargs="?", default="-", help="a file, or - for stdin (default)")
    p.add_argument("--format", choices=ref_usage.FORMATS, help="the response format (default: from its shape)")
    p.add_argument("--model", help="the model id (default: the one the response names)")
    p.add_argument("--date", help="the request's date, YYYY-MM-DD (default: the latest card)")
    p.add_argument("--tier", choices=sorted(TIERS), help="how it was sent: batch, flex, priority, standard")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return p.parse_args(argv)


def _read(source: str) -> str:
    try:
        return sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as err:
        raise BadInput(f"source: cannot read {source!r} ({err.strerror})") from None


def _sse(text: str) -> list[Any] | None:
    """A server-sent-events capture (``data: {...}`` lines) as its list of events, or None if it is not one."""
    events = []
    for line in text.splitlines():
        if line.startswith("data:"):
            data = line[5:].strip()
            if data and data != "[DONE]":
                try:
                    events.append(json.loads(data))
                except json.JSONDecodeError as err:
                    raise BadInput(f"events[{len(events)}]: not JSON ({err.msg})") from None
    return events or None


def documents(text: str) -> tuple[list[Any], bool]:
    """The responses in ``text`` and whether it is a log (one response per line)."""
    try:
        return [json.loads(text)], False
    except json.JSONDecodeError:
        pass
    events = _sse(text)
    if events is not None:
        return [events], False
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise BadInput(f"line {number}: not JSON ({err.msg} at column {err.colno})") from None
    if not records:
        raise BadInput("body: empty input")
    return records, True


def price_one(record: Any, args: argparse.Namespace, on: date | None) -> dict[str, Any]:
    envelope = record if isinstance(record, dict) and "body" in record else {"body": record}
    body = envelope["body"]
    try:
        fmt = args.format or envelope.get("format") or ref_usage.detect_format(body)
        usage = ref_usage.parse(fmt, body)
    except ref_usage.UsageError as err:
        raise BadInput(str(err)) from None
    model = args.model or envelope.get("model") or ref_usage.model_of(body)
    out: dict[str, Any] = {"format": fmt, "model": model,
                           "usage": None if usage is None else {k: v for k, v in asdict(usage).items() if v}}
    if usage is None:
        out["cost"] = "unknown"
        return out
    if not model:
        raise BadInput("model: the response names no model; pass --model")
    options = TIERS[args.tier] if args.tier else ref.BillingOptions(batch=bool(envelope.get("batch", False)))
    try:
        card = ref.card_for(model, on or (date.fromisoformat(envelope["date"]) if envelope.get("date") else None))
    except ref.PriceError as err:
        raise BadInput(f"model: {err}") from None
    except ValueError as err:
        raise BadInput(f"date: {err}") from None
    try:  # the tier the payload reports against --tier (or the log's batch flag), and what the card offers
        ref.effective_rates(usage, card, ref.resolve_options(usage, card, options))
    except ref.PriceError as err:
        raise BadInput(f"{'--tier' if args.tier else 'service_tier'}: {err}") from None
    try:
        result = ref.cost(usage, card, options)
    except ref.PriceError as err:  # a part the usage has and the card does not price
        raise BadInput(f"usage: {err}") from None
    out.update(card={"model": card.model, "valid_from": card.valid_from.isoformat(),
                     "valid_to": card.valid_to.isoformat() if card.valid_to else None, "source": card.source},
               options={"batch": result.options.batch, "service_tier": result.options.service_tier},
               long_context=result.long_context, cost=money(result.total),
               breakdown={k: money(v) for k, v in result.breakdown.items()})
    return out


def _table(row: dict[str, Any]) -> str:
    lines = [f"format      {row['format']}", f"model       {row['model']}"]
    if row["usage"] is None:
        return "\n".join([*lines, "usage       unknown (the response carries no usage): cost unknown, not $0"])
    card = row["card"]
    lines[1] += f" -> card {card['model']} ({card['valid_from']}..{card['valid_to'] or 'open'}, {card['source']})"
    lines.append("usage       " + (", ".join(f"{k}={v}" for k, v in row["usage"].items()) or "no tokens"))
    opts = [n for n, on in (("batch", row["options"]["batch"]), ("long context", row["long_context"])) if on]
    if row["options"]["service_tier"]:
        opts.append(f"tier {row['options']['service_tier']}")
    lines.append("rates       " + (", ".join(opts) or "standard"))
    lines.append(f"cost        ${row['cost']}")
    width = max((len(part) for part in row["breakdown"]), default=0) + 2
    lines += [f"  {part:<{width}}${value}" for part, value in row["breakdown"].items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        try:
            on = date.fromisoformat(args.date) if args.date else None
        except ValueError:
            raise BadInput(f"--date: {args.date!r} is not YYYY-MM-DD") from None
        records, is_log = documents(_read(args.source))
        rows = []
        for number, record in enumerate(records, 1):
            try:
                rows.append(price_one(record, args, on))
            except BadInput as err:
                raise BadInput(f"line {number}, {err}" if is_log else str(err)) from None
    except BadInput as err:
        print(f"tokenspec-cost: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    if not is_log:
        print(json.dumps(rows[0], indent=1) if args.json else _table(rows[0]))
        return 0
    priced = [r for r in rows if r["cost"] != "unknown"]
    total = sum((Decimal(r["cost"]) for r in priced), Decimal(0))
    summary = {"responses": len(rows), "priced": len(priced), "usage_unknown": len(rows) - len(priced),
               "cost": money(total)}
    if args.json:
        print(json.dumps({**summary, "rows": rows}, indent=1))
    else:
        print(f"{summary['responses']} responses, {summary['priced']} priced, {summary['usage_unknown']} with usage "
              f"unknown (not priced): ${total}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
