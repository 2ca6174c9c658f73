"""`status` for people: rich tables on a terminal, greppable `key value` lines otherwise."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from reminder_cli.output import console, is_terminal, local_time, table


def _plain(status: dict[str, Any]) -> None:
    for w in status["warnings"]:
        print(f"{w['level']} {w['text']}")
    for p in status["paused"]:
        print(f"paused channel={p['channel']} by={p['by']} since={p['since']} reason={p['reason']}")
    print(f"journal {status['journal']}")
    print("counts " + " ".join(f"{state}={n}" for state, n in status["counts"].items()))
    print(f"due_now {status['due_now']}")
    print(f"next_due_at {status['next_due_at'] or '-'}")
    for r in status["in_doubt"]:
        print(
            f"in_doubt id={r['id']} channel={r['channel']} recipient={r['recipient']} "
            f"claimed_at={r['claimed_at'] or '-'} reason={r['reason']}"
        )
    for run in status["runs"]:
        keys = (
            "id",
            "kind",
            "started_at",
            "duration_s",
            "outcome",
            "sent",
            "failed",
            "unknown",
            "retrying",
            "suppressed",
            "expired",
        )
        print(
            "run "
            + " ".join(f"{k}={run.get(k, '-')}" for k in keys)
            + (f" reason={run['reason']}" if run["reason"] else "")
        )
    for key in ("recent_failures", "suppressed", "expired"):
        for r in status[key]:
            print(
                f"{key.rstrip('s') if key != 'recent_failures' else 'failed'} id={r['id']} "
                f"channel={r['channel']} recipient={r['recipient']} reason={r['reason']}"
            )
    quality = status["data_quality"]
    for a in quality["cannot_take_sms"]:
        print(
            f"no_sms appointment={a['appointment_id']} "
            f"no_usable_contact={str(a['no_usable_contact']).lower()} reason={a['reason']}"
        )
    for o in quality["opted_out"]:
        print(f"opted_out recipient={o['recipient']} since={o['since']}")
    for u in quality["undelivered"]:
        print(
            f"undelivered recipient={u['recipient']} status={u['status']} "
            f"error={u['error_code'] or '-'} reminder={u['reminder_id']}"
        )
    if status["sms_delivery"]:
        print("sms_delivery_7d " + " ".join(f"{k}={v}" for k, v in status["sms_delivery"].items()))
    for b in quality["bounced"]:
        print(
            f"bounced recipient={b['recipient']} reminder={b['reminder_id']} reason={b['reason']}"
        )
    lock = status["lock"]
    print(
        f"lock held={str(lock['held']).lower()} pid={lock['pid'] or '-'} "
        f"since={lock['since'] or '-'}"
    )


def print_status(status: dict[str, Any]) -> None:
    if not is_terminal():
        _plain(status)
        return
    zone = ZoneInfo(status.get("timezone") or "UTC")
    out = console()
    for p in status["paused"]:
        out.print(
            f"PAUSED ({p['channel']}) by {p['by']} since {local_time(p['since'], zone)}: "
            f"{p['reason']}",
            style="bold red",
        )
    for w in status["warnings"]:
        out.print(
            f"{w['level'].upper()}: {w['text']}",
            style="red" if w["level"] == "critical" else "yellow",
        )
    out.print(f"Journal {status['journal']} (times in {zone.key})")
    labels = {"unknown": "in doubt"}
    out.print("  ".join(f"{labels.get(state, state)} {n}" for state, n in status["counts"].items()))
    out.print(
        f"Due now: {status['due_now']}    Next due: {local_time(status['next_due_at'], zone)}"
    )
    if status["in_doubt"]:
        doubt = table(
            "In doubt: the provider may have them", "id", "channel", "recipient", "claimed", "why"
        )
        for r in status["in_doubt"]:
            doubt.add_row(
                str(r["id"]),
                r["channel"],
                r["recipient"],
                local_time(r["claimed_at"], zone),
                r["reason"],
            )
        out.print(doubt)
    if status["runs"]:
        runs = table(
            "Last runs",
            "run",
            "kind",
            "started",
            "took",
            "sent",
            "failed",
            "in doubt",
            "suppressed",
            "expired",
            "ended",
        )
        for run in status["runs"]:
            ended = run["outcome"] + (f": {run['reason']}" if run["reason"] else "")
            took = f"{run['duration_s']}s" if "duration_s" in run else "-"
            runs.add_row(
                str(run["id"]),
                run["kind"],
                local_time(run["started_at"], zone),
                took,
                str(run["sent"]),
                str(run["failed"]),
                str(run["unknown"]),
                str(run["suppressed"]),
                str(run["expired"]),
                ended,
            )
        out.print(runs)
    else:
        out.print("No run yet.")
    for key, title in (
        ("recent_failures", "Failed in the last 7 days"),
        ("suppressed", "Suppressed in the last 7 days"),
        ("expired", "Expired in the last day"),
    ):
        if status[key]:
            grid = table(title, "id", "appointment", "channel", "recipient", "due", "why")
            for r in status[key]:
                grid.add_row(
                    str(r["id"]),
                    r["appointment_id"],
                    r["channel"],
                    r["recipient"],
                    local_time(r["due_at"], zone),
                    r["reason"],
                )
            out.print(grid)
    if status["sms_delivery"]:
        out.print(
            "SMS in the last 7 days: "
            + ", ".join(
                f"{count} {state}" for state, count in sorted(status["sms_delivery"].items())
            )
        )
    _print_quality(status["data_quality"])
    lock = status["lock"]
    out.print(
        f"Lock: held by pid {lock['pid']} since {local_time(lock['since'], zone)}"
        if lock["held"]
        else "Lock: free"
    )


def _print_quality(quality: dict[str, Any]) -> None:
    rows = [
        (
            "cannot take SMS" + (", no usable contact" if a["no_usable_contact"] else ""),
            a["appointment_id"],
            a["phone"],
            a["reason"],
        )
        for a in quality["cannot_take_sms"]
    ]
    rows += [("opted out", "-", o["recipient"], o["reason"]) for o in quality["opted_out"]]
    rows += [
        (
            "SMS not delivered",
            f"reminder {u['reminder_id']}",
            u["recipient"],
            f"{u['status']} {u['error_code'] or ''}".strip(),
        )
        for u in quality["undelivered"]
    ]
    rows += [
        ("bounced", f"reminder {b['reminder_id']}", b["recipient"], b["reason"])
        for b in quality["bounced"]
    ]
    if rows:
        grid = table("Data quality", "problem", "where", "contact", "detail")
        for row in rows:
            grid.add_row(*row)
        console().print(grid)
