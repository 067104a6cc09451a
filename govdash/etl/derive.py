"""Derived ticket fields for the rows a load changed, and the rows those changes reach.

The loader's upserts record what they change in temp tables of the work connection (created
by `begin`, filled inside each file's transaction so a file that fails leaves no mark):

* `derive_changed`: the new versions of inserted or updated tickets (key, position, moment,
  file);
* `derive_old`: the positions of the versions they replaced (a moved ticket changes the
  repeat flag of its old successor), their moments (the as-of time may drop), files (a
  file may lose its last callback value: govdash.etl.aggregates) and places and codes (the
  sidebar's lists drop a combination no ticket has any more: govdash.etl.aggregates);
* `derive_surveys`: the survey responses inserted or updated;
* `derive_compounds`: the compound names whose register rows were inserted or updated.

`derive` then brings every derived field to exactly what a recompute over all history gives:

* places from the register (blank community, street, district, property company filled where
  the compound's name is unambiguous): in the months of the changed rows, and for every row
  of a compound whose register rows changed. A ticket is written with the places the
  register gives it at that moment (`places_at_write`), so this fills only what a register
  written later in the load makes fillable;
* `as_of`: the previous as-of time and the changed rows' latest moment, unless a replaced
  version held the previous maximum (then one aggregate over all tickets);
* the first and last acceptance time (`BOUNDS_KEY`, every page's date range): likewise from
  the previous ones and the changed rows, and where a replaced version held one of them, from
  the month of tickets that must hold the new one (all tickets only if that month is empty);
* the on-time statuses: in the months of the changed rows, and for the rows whose status
  depends on the as-of time when it moved (`not_yet_due` rows when it advanced; every row not
  yet responded or closed if it fell);
* `is_repeat` (an earlier ticket of the same caller and category at most `window` days
  before): a ticket's flag depends only on its predecessor in that pair. Inserting, moving or
  removing a ticket at time x changes the predecessor of its successor s only, and s's flag
  only if s − x ≤ window (otherwise s was not a repeat before and is not now). So only rows of
  the changed rows' (caller, category) pairs within [x, x + window] can change, and each of
  them is recomputed from the rows of its pair in [its time − window, its time].

Work that needs history is done in steps of whole, consecutive months holding changed rows
(at most CHUNK_ROWS changed rows a step; months without a change are never touched), each
step one statement: what a step reads is its months' rows, never all history.

All of it runs inside the load's one lake transaction, where every row a statement rewrites
is held (DuckLake's record of the deletions, the new files) until COMMIT, and so is every old
version of a work table replaced or emptied: so a new ticket is written with its statuses
already (`initial_fields`), a step rewrites only the rows that differ, and no work table is
replaced or rebuilt (a step's pairs are a subquery of its statement).
"""

from __future__ import annotations

import json
from datetime import datetime

import duckdb

from govdash.core.config import Config

# A ticket's places and codes: what a page's selection filters by, so what the sidebar's lists
# combine and the backlog's open rows keep (govdash.etl.aggregates).
COMBINATION_COLUMNS = (
    "street",
    "community",
    "compound",
    "property_company",
    "category",
    "priority",
    "channel",
)
CHANGE_TABLES = {
    "derive_changed": "ticket_id VARCHAR, accepted_at TIMESTAMP, caller_hash VARCHAR, "
    "category VARCHAR, compound VARCHAR, moment TIMESTAMP, batch_id BIGINT",
    "derive_old": "accepted_at TIMESTAMP, caller_hash VARCHAR, category VARCHAR, "
    "moment TIMESTAMP, batch_id BIGINT, "
    + ", ".join(f"{c} VARCHAR" for c in COMBINATION_COLUMNS if c != "category"),
    "derive_surveys": "response_id VARCHAR",
    "derive_compounds": "compound VARCHAR",
    # filled by `derive`: when the as-of time advanced from `previous`, every row whose status
    # it moved was accepted at or after `since` (for govdash.etl.aggregates' touched months)
    "derive_advance": "previous VARCHAR, since VARCHAR",
}
# The latest moment of a ticket: the as-of time is the latest over all tickets.
MOMENT = """greatest(accepted_at, coalesce(first_response_at, accepted_at),
    coalesce(arrived_at, accepted_at), coalesce(closed_at, accepted_at))"""
WINDOW_KEY = "repeat_window_days"
# The earliest acceptance time of a row not yet due (or the as-of time when there is none):
# where the next advance of the as-of time starts looking (warehouse_info).
WAITING_KEY = "not_yet_due_from"
# The first and last acceptance time over all tickets, as JSON [first, last, batch]: what every
# page's date range starts from (govdash.analytics.queries.aggregated.accepted_bounds), without
# reading a city's tickets. Valid only while `batch` is the last file loaded: a loader of an
# earlier release records its files and leaves this key as it was.
BOUNDS_KEY = "accepted_bounds"
# The derived fields a ticket is first written with (`initial_fields`).
INITIAL_FIELDS = ("response_status", "resolution_status", "is_repeat")
# A ticket's places a blank is filled in from the register, and the register's places of each
# compound whose name is unambiguous (one register row).
TICKET_PLACES = ("community", "street", "district", "property_company")
REGISTER_PLACES = """SELECT compound, any_value(community) AS community,
        any_value(street) AS street, any_value(district) AS district,
        any_value(property_company) AS property_company
    FROM compounds GROUP BY compound HAVING count(*) = 1"""

# On-time status per DOMAIN.md §4: open tickets past their limit at the as-of time are late.
RESPONSE_STATUS = """CASE
    WHEN NOT has_response_column THEN NULL
    WHEN first_response_at IS NOT NULL THEN
        CASE WHEN response_minutes <= response_limit_minutes THEN 'on_time' ELSE 'late' END
    WHEN accepted_at + to_seconds(CAST(response_limit_minutes * 60 AS BIGINT))
        < CAST($as_of AS TIMESTAMP) THEN 'late'
    ELSE 'not_yet_due' END"""
RESOLUTION_STATUS = """CASE
    WHEN closed_at IS NOT NULL THEN
        CASE WHEN resolution_hours <= resolution_limit_hours THEN 'on_time' ELSE 'late' END
    WHEN NOT is_open THEN NULL
    WHEN accepted_at + to_seconds(CAST(resolution_limit_hours * 3600 AS BIGINT))
        < CAST($as_of AS TIMESTAMP) THEN 'late'
    ELSE 'not_yet_due' END"""
STATUS_DIFFERS = f"""(response_status IS DISTINCT FROM {RESPONSE_STATUS}
    OR resolution_status IS DISTINCT FROM {RESOLUTION_STATUS})"""
# Rows whose status may move with the as-of time: not responded, or not closed (a superset).
DEPENDS_ON_AS_OF = "(first_response_at IS NULL OR closed_at IS NULL)"
IN_CHUNK = "accepted_at >= $start AND accepted_at < $end"
# Rows a step may cover: a step's statement holds the old values of what it rewrites until it
# commits, so a first load of 10M rows is derived in ~20 steps, a monthly load in one or two.
CHUNK_ROWS = 500_000


def begin(con: duckdb.DuckDBPyConnection) -> None:
    """Start recording a load's changes (outside any transaction: a file's rollback keeps the
    tables and drops only that file's marks)."""
    for name, columns in CHANGE_TABLES.items():
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} ({columns})")


def recording(con: duckdb.DuckDBPyConnection) -> bool:
    found = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = 'derive_changed'"
    ).fetchone()
    return bool(found and found[0])


def before_tickets_write(con: duckdb.DuckDBPyConnection) -> None:
    """Called by the ticket upsert once `changed` holds the keys to replace, before the old
    versions are deleted: their positions and moments are kept."""
    if not recording(con):
        return
    con.execute(
        f"""INSERT INTO derive_old
        SELECT t.accepted_at, t.caller_hash, t.category, {MOMENT}, t.batch_id,
            {", ".join(f"t.{c}" for c in COMBINATION_COLUMNS if c != "category")}
        FROM tickets t SEMI JOIN (SELECT ticket_id FROM changed WHERE NOT is_new) c
            ON t.ticket_id = c.ticket_id"""
    )
    # A ticket changed twice in one load: only its last version counts as changed.
    con.execute(
        """DELETE FROM derive_changed
        WHERE ticket_id IN (SELECT ticket_id FROM changed WHERE NOT is_new)"""
    )


def after_tickets_write(con: duckdb.DuckDBPyConnection, batch_id: int, every: bool) -> None:
    """Record the tickets written as file `batch_id` (`every`: all of `incoming` was written,
    none was unchanged)."""
    if recording(con):
        written = "" if every else "SEMI JOIN changed USING (ticket_id)"
        con.execute(
            f"""INSERT INTO derive_changed
            SELECT ticket_id, accepted_at, caller_hash, category, compound, {MOMENT},
                CAST($batch AS BIGINT)
            FROM incoming {written}""",
            {"batch": batch_id},
        )


def after_survey_write(con: duckdb.DuckDBPyConnection) -> None:
    if recording(con):
        con.execute("INSERT INTO derive_surveys SELECT response_id FROM changed")


def after_register_write(con: duckdb.DuckDBPyConnection) -> None:
    if recording(con):
        con.execute("INSERT INTO derive_compounds SELECT DISTINCT compound FROM changed")


def mark_everything(con: duckdb.DuckDBPyConnection) -> None:
    """Treat every stored row as changed: `derive` then recomputes all of history (month by
    month), as after a config change of the repeat window or a remap of stored words.

    Only the rows not yet recorded are added: inside the load's one transaction a replaced or
    emptied table keeps its old rows until COMMIT, so the record is never rebuilt. A first
    load has recorded every ticket already (each key once, the version stored), and then
    nothing is copied."""
    if not recording(con):
        begin(con)
    counts = con.execute(
        "SELECT (SELECT count(*) FROM tickets), (SELECT count(*) FROM derive_changed)"
    ).fetchone()
    if counts is None or counts[0] != counts[1]:
        con.execute(
            f"""INSERT INTO derive_changed
            SELECT ticket_id, accepted_at, caller_hash, category, compound, {MOMENT}, batch_id
            FROM tickets WHERE ticket_id NOT IN (SELECT ticket_id FROM derive_changed)"""
        )
    con.execute(
        """INSERT INTO derive_surveys SELECT response_id FROM survey_responses
        WHERE response_id NOT IN (SELECT response_id FROM derive_surveys)"""
    )


def places_at_write(source: str) -> str:
    """`source` (a ticket query) with `filled_<place>` beside each of TICKET_PLACES: the place,
    or where blank the register's for an unambiguous compound (what `_fill_places` would
    write). The ticket upsert compares the places as the file has them and stores these: a
    city's new file is written once with its places, not written and then rewritten."""
    filled = ", ".join(f"coalesce(s.{c}, r.{c}) AS filled_{c}" for c in TICKET_PLACES)
    return f"""SELECT s.*, {filled}
        FROM ({source}) AS s LEFT JOIN ({REGISTER_PLACES}) AS r ON s.compound = r.compound"""


def initial_fields(con: duckdb.DuckDBPyConnection, source: str) -> str:
    """SQL of the derived fields a ticket is first written with (over `source`'s columns):
    statuses at the as-of time the load reaches so far, and no repeat. `derive` corrects what
    differs, and writes only that: usually nothing but repeats and rows an as-of move reaches,
    where a recompute would rewrite every new row again inside the load's transaction."""
    previous = _stored(con, "as_of") if recording(con) else None
    so_far = "(SELECT max(moment) FROM derive_changed)" if recording(con) else "NULL"
    row = con.execute(
        f"""SELECT CAST(greatest((SELECT max({MOMENT}) FROM {source}), {so_far},
            CAST($previous AS TIMESTAMP)) AS VARCHAR)""",
        {"previous": previous},
    ).fetchone()
    as_of = "NULL" if row is None or row[0] is None else f"'{row[0]}'"
    return f"""{RESPONSE_STATUS.replace("$as_of", as_of)} AS response_status,
        {RESOLUTION_STATUS.replace("$as_of", as_of)} AS resolution_status,
        false AS is_repeat"""


def derive(con: duckdb.DuckDBPyConnection, config: Config) -> dict[str, int]:
    """Bring places, as-of time, statuses and repeat flags up to date for what changed; the
    number of ticket rows rewritten for each (every rewritten row is held until COMMIT)."""
    window = int(config.repeat_window_days)
    everything = not recording(con) or _stored(con, WINDOW_KEY) != str(window)
    if everything:
        mark_everything(con)  # no record of the changes, or flags made with another window
    places = _fill_places(con)
    # Recomputing everything, the as-of time is the latest moment of all rows (all changed).
    previous = None if everything else _stored(con, "as_of")
    waiting = None if everything else _stored(con, WAITING_KEY)
    as_of = _as_of(con, previous)
    first, last = _accepted(con, None if everything else stored_bounds(con))
    # DuckLake has no keys: replace the rows by delete + insert (one load transaction).
    con.execute(
        """DELETE FROM warehouse_info WHERE key IN
        ('as_of', 'updated_at', 'config_fingerprint', 'schema_version', $window_key, $bounds_key)""",
        {"window_key": WINDOW_KEY, "bounds_key": BOUNDS_KEY},
    )
    con.execute(
        """INSERT INTO warehouse_info VALUES ('as_of', $as_of),
            ('updated_at', CAST(current_localtimestamp() AS VARCHAR)),
            ('config_fingerprint', $fingerprint), ('schema_version', '1'), ($window_key, $window),
            ($bounds_key, json_array($first, $last, (SELECT max(batch_id) FROM load_batches)))""",
        {
            "as_of": as_of,
            "fingerprint": config.fingerprint,
            "window_key": WINDOW_KEY,
            "window": str(window),
            "bounds_key": BOUNDS_KEY,
            "first": first,
            "last": last,
        },
    )
    # Where the rows not yet due may lie: from the earliest of them before this load, or of
    # the months this load changed (which may bring an old open ticket), on.
    first_changed = con.execute(
        "SELECT CAST(date_trunc('month', min(accepted_at)) AS VARCHAR) FROM derive_changed"
    ).fetchone()
    since = min(
        (v for v in (waiting, first_changed[0] if first_changed else None) if v is not None),
        key=datetime.fromisoformat,
        default=None,
    )
    moved = _moved(previous, as_of)
    statuses = _statuses(con, moved, as_of, since if waiting is not None else None)
    if moved == "advanced" and waiting is not None and recording(con):
        con.execute(
            "INSERT INTO derive_advance VALUES ($previous, $since)",
            {"previous": previous, "since": since},
        )
    # The next load's start: exact, found from `since` on (every not-yet-due row lies there
    # unless the as-of time fell, when _statuses went over every row and so does this).
    start = None if waiting is None or moved == "fell" else since
    found = con.execute(
        f"""SELECT CAST(min(accepted_at) AS VARCHAR) FROM tickets
        WHERE {"accepted_at >= CAST($start AS TIMESTAMP) AND" if start else ""}
            (response_status = 'not_yet_due' OR resolution_status = 'not_yet_due')""",
        {"start": start} if start else {},
    ).fetchone()
    con.execute("DELETE FROM warehouse_info WHERE key = $key", {"key": WAITING_KEY})
    con.execute(
        "INSERT INTO warehouse_info VALUES ($key, $value)",
        {"key": WAITING_KEY, "value": found[0] if found and found[0] else as_of},
    )
    return {"places": places, "statuses": statuses, "repeats": _repeats(con, window)}


def _stored(con: duckdb.DuckDBPyConnection, key: str) -> str | None:
    row = con.execute("SELECT value FROM warehouse_info WHERE key = $key", {"key": key}).fetchone()
    return None if row is None or row[0] is None else str(row[0])


def _chunks(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[datetime, datetime]]:
    """[start, end) ranges of whole, consecutive months holding the `accepted_at` values the
    query selects, each of at most CHUNK_ROWS of them (a bigger month is a range of its own);
    months without a value are never covered."""
    found = con.execute(
        f"""SELECT date_trunc('month', accepted_at) AS m, count(*) FROM ({sql})
        WHERE accepted_at IS NOT NULL GROUP BY m ORDER BY m"""
    ).fetchall()
    chunks: list[tuple[datetime, datetime, int]] = []
    for month, count in found:
        following = _next_month(month)
        if chunks and chunks[-1][1] == month and chunks[-1][2] + count <= CHUNK_ROWS:
            chunks[-1] = (chunks[-1][0], following, chunks[-1][2] + count)
        else:
            chunks.append((month, following, int(count)))
    return [(start, end) for start, end, _ in chunks]


def _written(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object]) -> int:
    """Run an UPDATE; the rows it rewrote."""
    row = con.execute(sql, params).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _next_month(month: datetime) -> datetime:
    return month.replace(year=month.year + month.month // 12, month=month.month % 12 + 1)


def _fill_places(con: duckdb.DuckDBPyConnection) -> int:
    """Blank places from the register where the compound's name is unambiguous, in the
    months of the changed rows and of the rows of changed compounds; only rows it fills are
    written. Other rows in those months have nothing to fill: every load fills what its
    register can, and a compound becomes fillable only by a change of its register rows.
    A ticket is written with the places the register gives it then (`places_at_write`), so
    this writes only the rows a register written later in the load makes fillable."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE derive_register AS {REGISTER_PLACES}")
    registered = con.execute("SELECT count(*) FROM derive_register").fetchone()
    if not registered or not registered[0]:
        return 0
    written = 0
    fillable = "compound IN (SELECT compound FROM derive_register)"
    touched = "compound IN (SELECT compound FROM derive_compounds)"
    compounds_changed = con.execute("SELECT count(*) FROM derive_compounds").fetchone()
    for table, key, changed in (
        ("tickets", "ticket_id", "derive_changed"),
        ("survey_responses", "response_id", "derive_surveys"),
    ):
        # A survey response names no property company.
        places = [c for c in TICKET_PLACES if table == "tickets" or c != "property_company"]
        update = f"""UPDATE {table} AS t SET
                {", ".join(f"{c} = coalesce(t.{c}, r.{c})" for c in places)}
            FROM derive_register AS r
            WHERE t.compound = r.compound
              AND ({" OR ".join(f"(t.{c} IS NULL AND r.{c} IS NOT NULL)" for c in places)})"""
        if table == "survey_responses":  # one statement; none when no response or register
            # row changed (a tickets file does not read a city's millions of responses)
            surveys = con.execute(f"SELECT count(*) FROM {changed}").fetchone()
            if not (surveys and surveys[0]) and not (compounds_changed and compounds_changed[0]):
                continue  # nothing to fill: a city's responses are not read
            con.execute(
                f"""{update} AND (t.{key} IN (SELECT {key} FROM {changed}) OR t.{touched})"""
            )
            continue
        sources = [f"SELECT accepted_at FROM {changed} WHERE {fillable}"]
        if compounds_changed and compounds_changed[0]:
            sources.append(f"SELECT accepted_at FROM tickets WHERE {touched} AND {fillable}")
        for start, end in _chunks(con, " UNION ALL ".join(sources)):
            written += _written(con, f"{update} AND t.{IN_CHUNK}", {"start": start, "end": end})
    return written


def _as_of(con: duckdb.DuckDBPyConnection, previous: str | None) -> str | None:
    """The latest moment over all tickets, from the previous one and the changed rows; one
    aggregate over all tickets only when a replaced version held the previous maximum."""
    row = con.execute(
        """SELECT CAST(greatest(
                (SELECT max(moment) FROM derive_changed),
                CASE WHEN coalesce((SELECT max(moment) FROM derive_old), TIMESTAMP '-infinity')
                          < CAST($previous AS TIMESTAMP) THEN CAST($previous AS TIMESTAMP) END)
            AS VARCHAR),
            $previous IS NOT NULL
                AND (SELECT max(moment) FROM derive_old) >= CAST($previous AS TIMESTAMP)""",
        {"previous": previous},
    ).fetchone()
    if row is not None and not row[1]:
        return None if row[0] is None else str(row[0])
    # The row that held the maximum was replaced: the new maximum may be anywhere.
    full = con.execute(f"SELECT CAST(max({MOMENT}) AS VARCHAR) FROM tickets").fetchone()
    return None if full is None or full[0] is None else str(full[0])


def stored_bounds(con: duckdb.DuckDBPyConnection) -> tuple[str | None, str | None] | None:
    """The first and last acceptance time over all tickets as the last load kept them (each
    None when there is no ticket), or None where the last file loaded was not loaded by a
    loader that keeps them (`BOUNDS_KEY`)."""
    found = con.execute(
        """SELECT (SELECT value FROM warehouse_info WHERE key = $key),
            (SELECT max(batch_id) FROM load_batches)""",
        {"key": BOUNDS_KEY},
    ).fetchone()
    try:
        first, last, batch = json.loads(found[0]) if found and found[0] else (None, None, None)
    except (TypeError, ValueError):  # not three values
        return None
    if batch is None or found is None or batch != found[1]:
        return None
    return first, last


def _accepted(
    con: duckdb.DuckDBPyConnection, before: tuple[str | None, str | None] | None
) -> tuple[str | None, str | None]:
    """The first and last acceptance time over all tickets: from those `before` this load and
    the changed rows', unless a replaced version held one of them; then from the month that
    must hold it (no ticket lies before the lower of the two first times, none after the higher
    of the last), and only if that month has none, or nothing is known `before`, from all."""
    if before is not None:
        row = con.execute(
            """SELECT
                CAST(least((SELECT min(accepted_at) FROM derive_changed),
                           CAST($first AS TIMESTAMP)) AS VARCHAR),
                CAST(greatest((SELECT max(accepted_at) FROM derive_changed),
                              CAST($last AS TIMESTAMP)) AS VARCHAR),
                coalesce((SELECT min(accepted_at) <= CAST($first AS TIMESTAMP)
                              OR max(accepted_at) >= CAST($last AS TIMESTAMP)
                          FROM derive_old), false)""",
            {"first": before[0], "last": before[1]},
        ).fetchone()
        if row is not None and not row[2]:
            return row[0], row[1]
        if row is not None and row[0] is not None:
            found = con.execute(
                """SELECT
                    (SELECT CAST(min(accepted_at) AS VARCHAR) FROM tickets
                     WHERE accepted_at >= CAST($low AS TIMESTAMP)
                       AND accepted_at < CAST($low AS TIMESTAMP) + INTERVAL 1 MONTH),
                    (SELECT CAST(max(accepted_at) AS VARCHAR) FROM tickets
                     WHERE accepted_at <= CAST($high AS TIMESTAMP)
                       AND accepted_at > CAST($high AS TIMESTAMP) - INTERVAL 1 MONTH)""",
                {"low": row[0], "high": row[1]},
            ).fetchone()
            if found is not None and found[0] is not None and found[1] is not None:
                return found[0], found[1]
    full = con.execute(
        "SELECT CAST(min(accepted_at) AS VARCHAR), CAST(max(accepted_at) AS VARCHAR) FROM tickets"
    ).fetchone()
    return (None, None) if full is None else (full[0], full[1])


def _moved(previous: str | None, as_of: str | None) -> str | None:
    """How the as-of time moved since the last load: None (it did not, or these are the first
    tickets), "advanced", or "fell" (a corrected time; also when no ticket is left)."""
    if previous is None or previous == as_of:
        return None
    if as_of is not None and datetime.fromisoformat(as_of) > datetime.fromisoformat(previous):
        return "advanced"
    return "fell"


def _statuses(
    con: duckdb.DuckDBPyConnection, moved: str | None, as_of: str | None, since: str | None
) -> int:
    """Statuses of the changed rows' months, and of the rows the as-of time's move (`_moved`)
    reaches: when it advanced, the rows not yet due, all accepted at or after `since` (when
    known; a city's history before it is never read)."""
    set_statuses = f"""UPDATE tickets SET response_status = {RESPONSE_STATUS},
            resolution_status = {RESOLUTION_STATUS},
            is_repeat = CASE WHEN caller_hash IS NULL THEN false ELSE is_repeat END"""
    differs = f"({STATUS_DIFFERS} OR (caller_hash IS NULL AND is_repeat IS DISTINCT FROM false))"
    # Per month of the changed rows; the month's other rows are recomputed alongside (only
    # what differs is written): cheaper than picking the changed ones out, and exact.
    written = 0
    for start, end in _chunks(con, "SELECT accepted_at FROM derive_changed"):
        written += _written(
            con,
            f"{set_statuses} WHERE {IN_CHUNK} AND {differs}",
            {"start": start, "end": end, "as_of": as_of},
        )
    if moved is None:
        return written  # unmoved, or the first tickets: every row is a changed row, done above
    # The as-of time moved: rows that were not yet due may now be late; if it fell (a
    # corrected time), a late open row may be not yet due again.
    advanced = moved == "advanced"
    moving = (
        "(response_status = 'not_yet_due' OR resolution_status = 'not_yet_due')"
        if advanced
        else DEPENDS_ON_AS_OF
    )
    params: dict[str, object] = {"as_of": as_of}
    if advanced and since is not None:
        moving += " AND accepted_at >= CAST($since AS TIMESTAMP)"
        params["since"] = since
    return written + _written(con, f"{set_statuses} WHERE {moving} AND {differs}", params)


def _repeats(con: duckdb.DuckDBPyConnection, window: int) -> int:
    """Repeat flags of the rows within `window` days after the changed positions, per chunk
    [start, end) of those positions, from the rows of the same pairs in
    [start − window, end + window): every row that may change lies in [start, end + window),
    and the rows `window` days before each of them are in the range."""
    marks = """SELECT accepted_at, caller_hash, category FROM derive_changed
        WHERE caller_hash IS NOT NULL
        UNION ALL SELECT accepted_at, caller_hash, category FROM derive_old
        WHERE caller_hash IS NOT NULL"""
    days = f"INTERVAL {window} DAY"
    written = 0
    for start, end in _chunks(con, marks):
        written += _written(
            con,
            f"""UPDATE tickets SET is_repeat = f.is_repeat
            FROM (
                SELECT ticket_id, is_repeat FROM (
                    SELECT t.ticket_id, t.accepted_at, t.is_repeat AS stored,
                        coalesce(t.accepted_at - lag(t.accepted_at) OVER (
                            PARTITION BY t.caller_hash, t.category
                            ORDER BY t.accepted_at, t.ticket_id) <= {days}, false) AS is_repeat
                    FROM tickets t JOIN (
                        SELECT DISTINCT caller_hash, category FROM ({marks}) WHERE {IN_CHUNK}
                    ) p ON t.caller_hash = p.caller_hash
                        AND t.category IS NOT DISTINCT FROM p.category
                    WHERE t.accepted_at >= $start - {days} AND t.accepted_at < $end + {days}
                ) WHERE accepted_at >= $start AND is_repeat IS DISTINCT FROM stored
            ) f
            WHERE tickets.ticket_id = f.ticket_id
              AND tickets.accepted_at >= $start AND tickets.accepted_at < $end + {days}""",
            {"start": start, "end": end},
        )
    return written
