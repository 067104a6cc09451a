-- The warehouse contract: tables analysts may query directly. English field names per
-- DOMAIN.md; timestamps end in _at, dates in _on, booleans start with is_/has_.
-- The tables live in a DuckLake (govdash/core/lake.py): no PRIMARY KEY or UNIQUE constraints
-- there, so the loader keeps keys unique itself (upserts delete the old version first).

CREATE TABLE IF NOT EXISTS load_batches (
    batch_id            INTEGER NOT NULL,  -- unique: the loader numbers batches
    file_name           VARCHAR NOT NULL,   -- the name the file had when loaded
    file_sha256         VARCHAR NOT NULL,   -- content hash; the original is kept as raw/<hash>
    file_bytes          BIGINT,
    kinds               VARCHAR,            -- register, tickets, survey, evaluation (comma-separated)
    sheets_used         VARCHAR[],
    sheets_skipped      VARCHAR[],
    rows_read           INTEGER,            -- data rows below the header (blank/footer rows excluded)
    rows_loaded         INTEGER,
    rows_rejected       INTEGER,
    rows_inserted       INTEGER,
    rows_updated        INTEGER,
    rows_unchanged      INTEGER,
    rows_skipped        INTEGER,            -- blank rows, footers (合计, 制表人…) and repeated headers
    loaded_at           TIMESTAMP NOT NULL,
    config_fingerprint  VARCHAR,
    loader_version      VARCHAR,
    loaded_by           VARCHAR             -- who loaded it: account name, or the OS user (govdash load --as)
);

CREATE TABLE IF NOT EXISTS rejected_rows (
    batch_id     INTEGER NOT NULL,
    file_name    VARCHAR NOT NULL,
    sheet        VARCHAR,
    row_number   INTEGER,                  -- the row number Excel shows
    column_name  VARCHAR,                  -- the header as written in the file
    raw_value    VARCHAR,                  -- personal data columns are never copied here
    reason       VARCHAR NOT NULL,          -- in Chinese, for the clerk who fixes the file
    kind         VARCHAR
);

CREATE TABLE IF NOT EXISTS compounds (
    district             VARCHAR,
    street               VARCHAR,
    community            VARCHAR,
    compound             VARCHAR NOT NULL,
    compound_type        VARCHAR,
    grid                 VARCHAR,
    households           INTEGER,
    buildings            INTEGER,
    property_company     VARCHAR,
    is_red_pm            BOOLEAN,
    has_joint_agreement  BOOLEAN,
    agreement_signed_on  DATE,
    red_pm_certified_on  DATE,
    unmapped_values      MAP(VARCHAR, VARCHAR),  -- field → word as written, where not understood
    batch_id             INTEGER,
    source_sheet         VARCHAR,
    source_row           INTEGER,
    row_hash             UBIGINT
);

CREATE TABLE IF NOT EXISTS tickets (
    ticket_id               VARCHAR NOT NULL,
    channel                 VARCHAR,
    request_type            VARCHAR,
    category                VARCHAR,
    priority                VARCHAR,
    district                VARCHAR,
    street                  VARCHAR,
    community               VARCHAR,
    compound                VARCHAR,
    grid                    VARCHAR,
    building                VARCHAR,           -- room numbers are cut to the building
    property_company        VARCHAR,
    accepted_at             TIMESTAMP NOT NULL,
    first_response_at       TIMESTAMP,
    arrived_at              TIMESTAMP,
    closed_at               TIMESTAMP,
    status                  VARCHAR,
    is_open                 BOOLEAN,
    is_valid_callback       BOOLEAN,
    is_contacted            BOOLEAN,
    is_resolved             BOOLEAN,
    callback_satisfaction   VARCHAR,           -- 满意 / 基本满意 / 不满意
    caller_hash             VARCHAR,           -- keyed hash of the phone number; the key is not in this file
    description             VARCHAR,           -- phone and ID numbers scrubbed
    committed_hours         DOUBLE,            -- the sheet's own 承诺时限, where it had one
    response_minutes        DOUBLE,
    resolution_hours        DOUBLE,
    response_limit_minutes  DOUBLE,
    resolution_limit_hours  DOUBLE,
    response_status         VARCHAR,           -- on_time / late / not_yet_due / NULL (not measured)
    resolution_status       VARCHAR,           -- on_time / late / not_yet_due / NULL
    is_repeat               BOOLEAN,           -- same caller and category within the repeat window
    has_response_column     BOOLEAN,
    dispatched_at           TIMESTAMP,         -- 12345 hotline: 派单时间, dispatched to the handling unit
    signed_at               TIMESTAMP,         -- 签收时间, the handling unit took it up
    handling_unit           VARCHAR,           -- 承办单位
    takeup_minutes          DOUBLE,            -- 签收 − 派单: how fast a unit takes up dispatched work
    unmapped_values         MAP(VARCHAR, VARCHAR), -- field → word as written, where the vocabulary did not know it
    batch_id                INTEGER,
    source_sheet            VARCHAR,
    source_row              INTEGER,
    row_hash                UBIGINT
);

CREATE TABLE IF NOT EXISTS survey_responses (
    response_id      VARCHAR NOT NULL,
    wave             VARCHAR,
    wave_year        INTEGER,
    wave_index       INTEGER,                  -- 1 = first wave of the year (上半年), 2 = second …
    method           VARCHAR,
    district         VARCHAR,
    street           VARCHAR,
    community        VARCHAR,
    compound         VARCHAR,
    building         VARCHAR,
    respondent_type  VARCHAR,
    surveyed_on      DATE,
    comment          VARCHAR,                  -- phone and ID numbers scrubbed
    batch_id         INTEGER,
    source_sheet     VARCHAR,
    source_row       INTEGER,
    row_hash         UBIGINT
);

CREATE TABLE IF NOT EXISTS survey_answers (
    response_id  VARCHAR NOT NULL,
    item         VARCHAR NOT NULL,
    score        TINYINT NOT NULL               -- 1–5; blank answers are not stored
);

CREATE TABLE IF NOT EXISTS evaluation_scores (
    year         INTEGER NOT NULL,
    unit_level   VARCHAR NOT NULL,              -- compound / community / property_company
    unit         VARCHAR NOT NULL,
    evaluator    VARCHAR NOT NULL,              -- a pseudonym (评委-XXXXXX), never the name
    indicator    VARCHAR NOT NULL,
    score        DOUBLE NOT NULL,
    batch_id     INTEGER,
    source_sheet VARCHAR,
    source_row   INTEGER,
    row_hash     UBIGINT
);

CREATE TABLE IF NOT EXISTS evaluation_adjustments (
    year         INTEGER NOT NULL,
    unit_level   VARCHAR NOT NULL,
    unit         VARCHAR NOT NULL,
    evaluator    VARCHAR NOT NULL,
    bonus        DOUBLE,
    penalty      DOUBLE,
    is_veto      BOOLEAN,
    note         VARCHAR,
    batch_id     INTEGER,
    source_sheet VARCHAR,
    source_row   INTEGER,
    row_hash     UBIGINT
);

CREATE TABLE IF NOT EXISTS warehouse_info (
    key    VARCHAR NOT NULL,  -- one row per key (DuckLake has no keys: replaced by delete + insert)
    value  VARCHAR
);

-- Per-period ticket figures for the pages' default views (govdash/etl/aggregates.py): one row
-- per period (month, quarter, year) × grouping (`level`: which place columns it groups by;
-- the others are NULL) × unit, written by the loader for the periods each load touched.
CREATE TABLE IF NOT EXISTS agg_units (
    period_kind              VARCHAR,           -- month / quarter / year
    period_start             DATE,              -- its first day
    level                    VARCHAR,           -- district, street, community, compound, … (aggregates.GROUPINGS)
    street                   VARCHAR,
    community                VARCHAR,
    compound                 VARCHAR,
    property_company         VARCHAR,
    tickets                  BIGINT,
    repeat_tickets           BIGINT,
    response_on_time         BIGINT,
    response_on_time_n       BIGINT,
    resolution_on_time       BIGINT,
    resolution_on_time_n     BIGINT,
    callback_n               BIGINT,            -- N of the 三率
    callback_fallback_n      BIGINT,
    callback_recorded_n      BIGINT,
    contacted                BIGINT,            -- NULL: no ticket of the base records it
    resolved                 BIGINT,
    satisfied                BIGINT,
    basic_satisfied          BIGINT,
    response_n               BIGINT,            -- tickets with a response time
    resolution_n             BIGINT,            -- tickets with a resolution time
    dissatisfied             BIGINT,
    parent_street            VARCHAR,           -- min(street): a community's (first) street in unit tables
    response_median_minutes  DOUBLE,            -- exact, as quantile_cont over the period's tickets
    response_p90_minutes     DOUBLE,
    resolution_median_hours  DOUBLE,
    resolution_p90_hours     DOUBLE
);

-- The files whose callback columns decided the 三率 base when agg_units was last written.
CREATE TABLE IF NOT EXISTS agg_callback_batches (
    batch_id  INTEGER
);

-- Survey answers per wave (wave_year × 100 + wave_index) × compound (the street, community and
-- compound the response names) × item × score, and respondents per wave × compound: the
-- per-compound item counts of the satisfaction figures, for any satisfied-score threshold.
CREATE TABLE IF NOT EXISTS agg_survey_answers (
    wave_key     INTEGER,
    street       VARCHAR,
    community    VARCHAR,
    compound     VARCHAR,
    item         VARCHAR,
    score        TINYINT,
    answers      BIGINT
);

-- The same answers with one column per score (1–5), one row per wave × compound × item: what
-- the satisfaction pages read (a fifth of the rows, nothing to pivot).
CREATE TABLE IF NOT EXISTS agg_survey_items (
    wave_key     INTEGER,
    street       VARCHAR,
    community    VARCHAR,
    compound     VARCHAR,
    item         VARCHAR,
    score_1      BIGINT,
    score_2      BIGINT,
    score_3      BIGINT,
    score_4      BIGINT,
    score_5      BIGINT
);

CREATE TABLE IF NOT EXISTS agg_survey_respondents (
    wave_key     INTEGER,
    street       VARCHAR,
    community    VARCHAR,
    compound     VARCHAR,
    respondents  BIGINT
);

-- The ticket codes seen in each place the accounts' scopes name (street, community): the
-- sidebar's category, priority and channel lists, without a scan of every ticket. A code
-- combination is added by the load that brings it and dropped by the load that replaces the
-- last ticket holding it.
CREATE TABLE IF NOT EXISTS agg_ticket_codes (
    street     VARCHAR,
    community  VARCHAR,
    category   VARCHAR,
    priority   VARCHAR,
    channel    VARCHAR
);

-- The place combinations of the tickets (street, community, compound, property company, each
-- blank as written): the sidebar's place lists, narrowed by the chosen streets and communities
-- and the account's scope, without a scan of every ticket or month row. Kept exact by each
-- load (added for the rows it writes, dropped when only rows it replaced had them).
CREATE TABLE IF NOT EXISTS agg_ticket_places (
    street            VARCHAR,
    community         VARCHAR,
    compound          VARCHAR,
    property_company  VARCHAR
);

-- The tickets open at each month's end (govdash/etl/aggregates.py): one row per month end ×
-- ticket open then (accepted before it; closed at or after it, or still open), with the
-- columns the backlog figures filter, count and list by. Month ends run to the first after the
-- as-of time, which holds every ticket open now. Kept by each load for the tickets it changed.
CREATE TABLE IF NOT EXISTS agg_open (
    end_at                   TIMESTAMP,         -- the month end: the next month's first moment
    ticket_id                VARCHAR,
    batch_id                 INTEGER,
    accepted_at              TIMESTAMP,
    closed_at                TIMESTAMP,
    is_open                  BOOLEAN,
    status                   VARCHAR,
    street                   VARCHAR,
    community                VARCHAR,
    compound                 VARCHAR,
    property_company         VARCHAR,
    category                 VARCHAR,
    priority                 VARCHAR,
    channel                  VARCHAR,
    resolution_limit_hours   DOUBLE
);

-- Repeat requests per month (govdash/etl/aggregates.py): tickets, those with a known caller and
-- repeats, by category and by compound (is_compound_row), each within its street and community.
-- Counts add up: a page sums the months of its period for any street and community selection.
CREATE TABLE IF NOT EXISTS agg_repeats (
    month                DATE,
    is_compound_row      BOOLEAN,
    street               VARCHAR,
    community            VARCHAR,
    category             VARCHAR,
    compound             VARCHAR,
    tickets              BIGINT,
    tickets_with_caller  BIGINT,
    repeats              BIGINT
);

-- The district's response-time distributions of each quarter and year (govdash/etl/aggregates.py:
-- the response page's figure by category, priority, property company, community or compound):
-- per group, its tickets, how many have each time, and the exact quantiles of both times.
CREATE TABLE IF NOT EXISTS agg_distributions (
    period_kind      VARCHAR,
    period_start     DATE,
    by_column        VARCHAR,                   -- the page's grouping (aggregates.DISTRIBUTION_COLUMNS)
    group_name       VARCHAR,                   -- the value, or （未填写） for a blank
    tickets          BIGINT,
    response_n       BIGINT,
    resolution_n     BIGINT,
    response_p10     DOUBLE,
    response_p25     DOUBLE,
    response_p50     DOUBLE,
    response_p75     DOUBLE,
    response_p90     DOUBLE,
    resolution_p10   DOUBLE,
    resolution_p25   DOUBLE,
    resolution_p50   DOUBLE,
    resolution_p75   DOUBLE,
    resolution_p90   DOUBLE
);

-- Quarters and years a load changed but left for later (too many tickets to recompute within
-- the load): pages read them from the tickets until aggregates.refresh_stale recomputes them.
CREATE TABLE IF NOT EXISTS agg_stale_periods (
    period_kind   VARCHAR,
    period_start  DATE
);
