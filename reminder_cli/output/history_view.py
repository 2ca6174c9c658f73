"""`show`: a reminder's story, and `replay`'s preview and summary."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from reminder_cli.dispatch import Report
from reminder_cli.output import console, is_terminal, local_time, table


def print_history(story: list[dict[str, Any]]) -> None:
    """Each reminder: what it is, its appointment, its plan, then its attempts and replays in
    the order they happened. Times are in the appointment's zone."""
    out = console()
    for item in story:
        r, appt = item["reminder"], item["appointment"]
        zone = ZoneInfo(appt["timezone"])

        def at(stamp: str | None, zone: ZoneInfo = zone) -> str:
            return local_time(stamp, zone, with_zone=True)

        out.print(
            f"Reminder {r['id']}: {r['channel']} to {r['recipient']}, rule {r['rule']}, "
            f"state {r['state']}" + (f" ({r['reason']})" if r["reason"] else "")
        )
        out.print(
            f"  appointment {appt['id']}: {appt['name'] or '(no name)'}, starts "
            f"{at(appt['starts_at'])} ({appt['timezone']}), {appt['status']}"
            + (f", {appt['location']}" if appt["location"] else "")
            + (f", {appt['clinician']}" if appt["clinician"] else "")
        )
        out.print(
            f"  plan: due {at(r['due_at'])}, useful until {at(r['expires_at'])}, "
            f"next attempt not before {at(r['not_before'])}, attempts {r['attempts']}"
        )
        events: list[tuple[str, int, str]] = []
        for p in item["replays"]:
            events.append(
                (
                    p["requested_at"],
                    0,
                    f"  replay requested {at(p['requested_at'])} by {p['operator']}"
                    + (" (forced)" if p["forced"] else "")
                    + f" from state {p['from_state']}: {p['reason'] or 'no reason given'}",
                )
            )
        for d in item["attempts"]:
            outcome = d["outcome"] or "in flight"
            line = (
                f"  attempt {d['attempt']}: run {d['run_id']}, claimed {at(d['claimed_at'])}, "
                f"finished {at(d['finished_at'])}, {outcome}"
            )
            if d["provider_id"]:
                line += f", provider id {d['provider_id']}"
            if d["error_code"]:
                line += f", error {d['error_code']}: {d['error_message']}"
            if d["delivery_status"]:
                line += f", delivery {d['delivery_status']}" + (
                    f" ({d['delivery_error']})" if d["delivery_error"] else ""
                )
            events.append((d["claimed_at"], 1, line))
        for _, _, line in sorted(events):
            out.print(line)
        if not item["attempts"]:
            out.print("  no attempt yet")
        out.print()


def print_replay_preview(
    chosen: list[dict[str, Any]], refused: list[tuple[dict[str, Any], str]]
) -> None:
    out = console()
    if chosen:
        grid = table(
            f"Would send {len(chosen)} reminder(s)",
            "id",
            "channel",
            "to",
            "patient",
            "appointment",
            "starts",
            "state",
        )
        for r in chosen:
            grid.add_row(
                str(r["id"]),
                r["channel"],
                r["recipient"],
                r["name"] or "-",
                r["appointment_id"],
                local_time(r["appointment_starts_at"], ZoneInfo(r["timezone"]), with_zone=True),
                r["state"],
            )
        out.print(grid)
    else:
        out.print("Nothing to send.")
    if refused:
        grid = table(f"Refused {len(refused)} reminder(s)", "id", "channel", "to", "why not")
        for r, why in refused:
            grid.add_row(str(r["id"]), r["channel"], r["recipient"], why)
        out.print(grid)


def print_replay_summary(report: Report, run_id: int) -> None:
    c = report.counts
    line = (
        f"Replay run #{run_id}: sent {c['sent']}, failed {c['failed']}, in doubt "
        f"{c['unknown']}, retrying {c['retrying']}, suppressed {c['suppressed']}, "
        f"waiting for quiet hours to end {c['deferred']}"
    )
    if is_terminal():
        console().print(line)
    else:
        print(line)
