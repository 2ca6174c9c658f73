"""The journal's schema as numbered migrations: only ever append, never edit one that shipped.

`PRAGMA user_version` holds the number of migrations applied.
"""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: appointments, reminders, one dispatch record per attempt, runs.
    """
    CREATE TABLE appointments (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        email TEXT,
        phone TEXT,
        starts_at TEXT NOT NULL,
        timezone TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'scheduled',
        location TEXT NOT NULL DEFAULT '',
        clinician TEXT NOT NULL DEFAULT '',
        sms_ok INTEGER NOT NULL DEFAULT 1,
        sms_problem TEXT NOT NULL DEFAULT '',
        source_hash TEXT NOT NULL DEFAULT '',
        imported_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        outcome TEXT NOT NULL DEFAULT 'running',
        reason TEXT NOT NULL DEFAULT '',
        sent INTEGER NOT NULL DEFAULT 0,
        failed INTEGER NOT NULL DEFAULT 0,
        unknown INTEGER NOT NULL DEFAULT 0,
        retrying INTEGER NOT NULL DEFAULT 0,
        suppressed INTEGER NOT NULL DEFAULT 0,
        expired INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE reminders (
        id INTEGER PRIMARY KEY,
        appointment_id TEXT NOT NULL REFERENCES appointments(id),
        rule TEXT NOT NULL,
        channel TEXT NOT NULL CHECK (channel IN ('email', 'sms')),
        recipient TEXT NOT NULL,
        starts_at TEXT NOT NULL,
        due_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        not_before TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sending', 'sent',
            'failed', 'unknown', 'cancelled', 'expired', 'suppressed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        reason TEXT NOT NULL DEFAULT '',
        provider_id TEXT,
        claimed_at TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (appointment_id, rule, channel, starts_at, recipient)
    );
    CREATE INDEX reminders_by_state ON reminders (state, not_before);
    CREATE INDEX reminders_by_recipient ON reminders (recipient, claimed_at);
    CREATE TABLE dispatches (
        id INTEGER PRIMARY KEY,
        reminder_id INTEGER NOT NULL REFERENCES reminders(id),
        run_id INTEGER NOT NULL REFERENCES runs(id),
        attempt INTEGER NOT NULL,
        channel TEXT NOT NULL,
        recipient TEXT NOT NULL,
        claimed_at TEXT NOT NULL,
        finished_at TEXT,
        outcome TEXT,
        provider_id TEXT,
        error_code TEXT,
        error_message TEXT,
        detail TEXT
    );
    CREATE INDEX dispatches_by_reminder ON dispatches (reminder_id);
    CREATE INDEX dispatches_by_run ON dispatches (run_id);
    """,
    # 2: safety rails and admin: recipient cap index, opted-out numbers, the pause switch,
    # replays (who asked and why), SMS delivery status on dispatch records, and the
    # fingerprint of the exact text each attempt sent (committed with the claim).
    """
    CREATE INDEX dispatches_by_recipient ON dispatches (recipient, claimed_at);
    CREATE TABLE opt_outs (
        recipient TEXT PRIMARY KEY,
        recorded_at TEXT NOT NULL,
        reason TEXT NOT NULL
    );
    CREATE TABLE pauses (
        channel TEXT PRIMARY KEY CHECK (channel IN ('all', 'email', 'sms')),
        paused_by TEXT NOT NULL,
        paused_at TEXT NOT NULL,
        reason TEXT NOT NULL
    );
    CREATE TABLE replays (
        id INTEGER PRIMARY KEY,
        reminder_id INTEGER NOT NULL REFERENCES reminders(id),
        run_id INTEGER REFERENCES runs(id),
        operator TEXT NOT NULL,
        reason TEXT NOT NULL,
        forced INTEGER NOT NULL DEFAULT 0,
        from_state TEXT NOT NULL,
        requested_at TEXT NOT NULL
    );
    CREATE INDEX replays_by_reminder ON replays (reminder_id);
    CREATE INDEX appointments_without_sms ON appointments (starts_at) WHERE sms_ok = 0;
    ALTER TABLE dispatches ADD COLUMN delivery_status TEXT;
    ALTER TABLE dispatches ADD COLUMN delivery_error TEXT;
    ALTER TABLE dispatches ADD COLUMN status_checked_at TEXT;
    ALTER TABLE dispatches ADD COLUMN body_sha TEXT;
    CREATE INDEX dispatches_open ON dispatches (run_id) WHERE outcome IS NULL;
    CREATE INDEX runs_running ON runs (id) WHERE outcome = 'running';
    CREATE INDEX dispatches_sms_sent ON dispatches (claimed_at)
        WHERE channel = 'sms' AND outcome = 'sent';
    """,
)
