"""The project file's schema, and the forward migrations that bring an older file up to it.

Migration ``n`` takes a file from version ``n`` to ``n + 1``; each runs in one transaction.

A project is told apart from any other SQLite file by SQLite's ``application_id`` (:data:`APPLICATION_ID`)
and the ``schema_version`` row in ``meta``; files made before version 3 carry only the second.
"""

from __future__ import annotations

import sqlite3

import sqlite_utils

SCHEMA_VERSION = 5
# The bytes "RSCs" read as a big-endian integer, as SQLite stores it at offset 68 of the file's header.
APPLICATION_ID = int.from_bytes(b"RSCs", "big")
# Tables every project has had since version 1: how a file made before the application id is recognised.
V1_TABLES = frozenset({
    "meta", "patients", "recordings", "cycles", "cycle_edits", "imports", "import_messages", "runs",
    "run_epochs", "outputs", "classifications",
})


def _execute_script(db: sqlite_utils.Database, script: str) -> None:
    """Runs the statements one by one inside the caller's transaction.

    sqlite3's ``executescript`` commits a pending transaction first, which would make a migration that
    fails halfway leave a file neither old nor new.
    """
    statement = ""
    for piece in script.split(";"):
        statement += piece + ";"
        if sqlite3.complete_statement(statement):
            if statement.strip(" \n\t;"):
                db.execute(statement)
            statement = ""
    if statement.strip(" \n\t;"):
        raise ValueError(f"incomplete SQL statement in a migration: {statement.strip()[:80]}")


def _schema_v1(db: sqlite_utils.Database) -> None:
    _execute_script(
        db,
        """
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
        CREATE TABLE patients (
            id TEXT PRIMARY KEY,
            age REAL, sex TEXT, bmi REAL, child_weight REAL, child_height REAL,
            age_group TEXT, diagnosis TEXT, fold INTEGER
        );
        CREATE TABLE recordings (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            patient_id TEXT REFERENCES patients(id),
            recording_index TEXT, chest_location TEXT, acquisition_mode TEXT, device TEXT,
            split TEXT,
            path TEXT, sha256 TEXT, size_bytes INTEGER,
            sample_rate INTEGER, channels INTEGER, subtype TEXT, frames INTEGER, duration REAL,
            audio_status TEXT NOT NULL DEFAULT 'missing',
            annotation_path TEXT,
            source TEXT, imported_at TEXT, notes TEXT
        );
        CREATE INDEX recordings_split ON recordings(split);
        CREATE INDEX recordings_patient ON recordings(patient_id);
        CREATE TABLE cycles (
            id INTEGER PRIMARY KEY,
            recording_id INTEGER NOT NULL REFERENCES recordings(id),
            start REAL NOT NULL, "end" REAL NOT NULL,
            crackle INTEGER NOT NULL DEFAULT 0, wheeze INTEGER NOT NULL DEFAULT 0,
            label INTEGER NOT NULL DEFAULT 0,
            origin TEXT NOT NULL DEFAULT 'dataset',
            source_line INTEGER,
            deleted INTEGER NOT NULL DEFAULT 0,
            edited INTEGER NOT NULL DEFAULT 0,
            created_at TEXT, updated_at TEXT,
            CHECK ("end" > start), CHECK (label BETWEEN 0 AND 3)
        );
        CREATE INDEX cycles_recording ON cycles(recording_id, start);
        CREATE TABLE cycle_edits (
            id INTEGER PRIMARY KEY,
            cycle_id INTEGER NOT NULL REFERENCES cycles(id),
            recording_id INTEGER NOT NULL,
            action TEXT NOT NULL,
            before TEXT, after TEXT,
            author TEXT, at TEXT NOT NULL, reason TEXT
        );
        CREATE INDEX cycle_edits_cycle ON cycle_edits(cycle_id);
        CREATE INDEX cycle_edits_recording ON cycle_edits(recording_id);
        CREATE TRIGGER cycle_edits_append_only_update BEFORE UPDATE ON cycle_edits
            BEGIN SELECT RAISE(ABORT, 'cycle_edits is append-only'); END;
        CREATE TRIGGER cycle_edits_append_only_delete BEFORE DELETE ON cycle_edits
            BEGIN SELECT RAISE(ABORT, 'cycle_edits is append-only'); END;
        CREATE TABLE imports (
            id INTEGER PRIMARY KEY, kind TEXT, source TEXT, started_at TEXT, finished_at TEXT,
            status TEXT, summary TEXT
        );
        CREATE TABLE import_messages (
            id INTEGER PRIMARY KEY, import_id INTEGER REFERENCES imports(id),
            level TEXT, file TEXT, line INTEGER, message TEXT
        );
        CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            group_name TEXT, kind TEXT, arch TEXT, seed INTEGER,
            spec TEXT, status TEXT, created_at TEXT, started_at TEXT, finished_at TEXT,
            epoch INTEGER, metrics TEXT, checkpoint TEXT, code_version TEXT,
            data_fingerprint TEXT, error TEXT
        );
        CREATE INDEX runs_group ON runs(group_name);
        CREATE TABLE run_epochs (
            run_id TEXT NOT NULL REFERENCES runs(id), epoch INTEGER NOT NULL,
            metrics TEXT, at TEXT, PRIMARY KEY (run_id, epoch)
        );
        CREATE TABLE outputs (
            run_id TEXT NOT NULL REFERENCES runs(id), cycle_id INTEGER NOT NULL REFERENCES cycles(id),
            logits TEXT NOT NULL, PRIMARY KEY (run_id, cycle_id)
        );
        CREATE TABLE classifications (
            id INTEGER PRIMARY KEY, run_id TEXT, audio_path TEXT, start REAL, "end" REAL,
            probabilities TEXT, label INTEGER, created_at TEXT
        );
        """
    )


def _runs_progress_column(db: sqlite_utils.Database) -> None:
    """Version 2: live progress gets its own column; ``runs.metrics`` holds only final metrics.

    Version 1 kept ``{"progress": {...}}`` in ``metrics`` while a run was queued, running, cancelled or
    failed, and replaced it with the final metrics when done.
    """
    _execute_script(
        db,
        """
        ALTER TABLE runs ADD COLUMN progress TEXT;
        UPDATE runs SET progress = json_extract(metrics, '$.progress'), metrics = NULL
            WHERE metrics IS NOT NULL AND json_valid(metrics) AND json_type(metrics, '$.progress') = 'object';
        CREATE INDEX IF NOT EXISTS runs_status ON runs(status, created_at);
        """
    )


def _identity_and_owners(db: sqlite_utils.Database) -> None:
    """Version 3: the file says it is a project, an import row says which process runs it, and a
    recording keeps what a cheap check for an in-place edit of its audio needs.

    ``application_id`` is written to the file's header inside the caller's transaction. ``mtime_ns`` and
    ``sample_hash`` stay NULL for existing recordings until their audio is next checked.
    """
    _execute_script(
        db,
        f"""
        PRAGMA application_id = {APPLICATION_ID};
        ALTER TABLE imports ADD COLUMN pid INTEGER;
        ALTER TABLE imports ADD COLUMN host TEXT;
        ALTER TABLE recordings ADD COLUMN mtime_ns INTEGER;
        ALTER TABLE recordings ADD COLUMN sample_hash TEXT;
        """
    )


def _cycle_sets_and_checksums(db: sqlite_utils.Database) -> None:
    """Version 4: the cycles a run trains and is scored on are fixed (one set per group, with the split,
    label, boundaries, patient and audio hash each cycle had), and every checkpoint file a run writes
    has its sha256 recorded, so a damaged or replaced file is recognised before it is read.

    Runs made before keep ``cycle_set`` NULL; training gives them one when they next start.
    """
    _execute_script(
        db,
        """
        CREATE TABLE cycle_sets (
            id INTEGER PRIMARY KEY, group_name TEXT, fingerprint TEXT NOT NULL, created_at TEXT NOT NULL
        );
        CREATE TABLE cycle_set_members (
            set_id INTEGER NOT NULL REFERENCES cycle_sets(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            cycle_id INTEGER NOT NULL REFERENCES cycles(id),
            recording_id INTEGER NOT NULL, split TEXT NOT NULL, label INTEGER NOT NULL,
            start REAL NOT NULL, "end" REAL NOT NULL, audio_sha256 TEXT, patient_id TEXT,
            PRIMARY KEY (set_id, position)
        );
        ALTER TABLE runs ADD COLUMN cycle_set INTEGER REFERENCES cycle_sets(id);
        CREATE INDEX runs_cycle_set ON runs(cycle_set);
        CREATE TRIGGER runs_drop_unused_cycle_set AFTER DELETE ON runs WHEN old.cycle_set IS NOT NULL
            BEGIN
                DELETE FROM cycle_sets WHERE id = old.cycle_set
                    AND NOT EXISTS (SELECT 1 FROM runs WHERE cycle_set = old.cycle_set);
            END;
        CREATE TABLE checkpoints (
            run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            file TEXT NOT NULL, epoch INTEGER NOT NULL, sha256 TEXT NOT NULL, size_bytes INTEGER NOT NULL,
            written_at TEXT NOT NULL,
            PRIMARY KEY (run_id, file)
        );
        """
    )


def _classification_provenance(db: sqlite_utils.Database) -> None:
    """Version 5: a stored classification says which model and which version of its weights gave it,
    where it came from, the project recording whose audio it is and the threshold it was cut at.

    ``run_id`` held the model's identity; it is copied into ``model`` and kept (dropping a column
    rebuilds the table in SQLite, for no gain), and nothing writes it any more. Earlier rows have no
    version or threshold (NULL); their recording is the one whose stored path is theirs, if any.
    """
    _execute_script(
        db,
        """
        ALTER TABLE classifications ADD COLUMN model TEXT;
        ALTER TABLE classifications ADD COLUMN model_version TEXT;
        ALTER TABLE classifications ADD COLUMN origin TEXT NOT NULL DEFAULT 'model';
        ALTER TABLE classifications ADD COLUMN recording_id INTEGER REFERENCES recordings(id);
        ALTER TABLE classifications ADD COLUMN threshold REAL;
        UPDATE classifications SET model = run_id,
            recording_id = (SELECT r.id FROM recordings r WHERE r.path = classifications.audio_path ORDER BY r.id LIMIT 1);
        CREATE INDEX classifications_audio ON classifications(audio_path, model, model_version);
        CREATE INDEX classifications_recording ON classifications(recording_id);
        """
    )


MIGRATIONS = [
    _schema_v1, _runs_progress_column, _identity_and_owners, _cycle_sets_and_checksums, _classification_provenance,
]
assert len(MIGRATIONS) == SCHEMA_VERSION
