-- Cell text for `deployments` and `incidents` with --format csv or json, computed by DuckDB so a
-- million rows never become Python objects (issue #16). Each macro is the SQL twin of the Python
-- code named beside it; tests/test_listing_formats.py compares the two over every character class
-- they treat differently, so a change on either side fails there, not in a user's spreadsheet.
--
-- RE2 (DuckDB's regex engine) keeps Python's leftmost-first alternation, so the patterns below are
-- those of analytics/redaction.py and analytics/reports.py written with \x{..} escapes.

-- analytics.redaction.needs_stripping: whether strip_controls would change the text
CREATE OR REPLACE TEMP MACRO gd_needs_strip(v) AS
    regexp_matches(v, '[\x{0}-\x{8}\x{a}-\x{1f}\x{7f}-\x{9f}\x{61c}\x{200e}\x{200f}\x{202a}-\x{202e}\x{2066}-\x{2069}\x{2028}\x{2029}]');

-- analytics.redaction.strip_controls(v, keep_newlines=True): CR LF and CR become LF, escape
-- sequences go whole, then every other control character (tab and LF stay)
CREATE OR REPLACE TEMP MACRO gd_strip_keep_newlines(v) AS
    regexp_replace(
        regexp_replace(
            replace(replace(v, chr(13) || chr(10), chr(10)), chr(13), chr(10)),
            '\x{1b}\[[0-?]*[ -/]*[@-~]|\x{1b}\][^\x{7}\x{1b}]*(?:\x{7}|\x{1b}\\)?|\x{9b}[0-?]*[ -/]*[@-~]|\x{1b}[@-_]',
            '', 'g'),
        '[\x{0}-\x{8}\x{b}-\x{1f}\x{7f}-\x{9f}\x{61c}\x{200e}\x{200f}\x{202a}-\x{202e}\x{2066}-\x{2069}]',
        '', 'g');

-- analytics.reports.escape_cell: a quote before text a spreadsheet would read as a formula
-- (after any spaces: = + - @ | tab CR LF or a full-width form), unless it is a plain number.
-- Python's \d is any Unicode decimal digit (\p{Nd}); its $ also matches before a final LF.
CREATE OR REPLACE TEMP MACRO gd_escape_cell(v) AS
    CASE WHEN regexp_matches(v, '^ *[=+\-@\t\r\n|\x{ff1d}\x{ff0b}\x{ff0d}\x{ff20}\x{ff5c}]')
              AND NOT regexp_matches(trim(v, ' '),
                  '^[+-]?(\p{Nd}+(\.\p{Nd}*)?|\.\p{Nd}+)([eE][+-]?\p{Nd}+)?\n?$')
         THEN '''' || v ELSE v END;

-- csv.writer (QUOTE_MINIMAL, Python 3.11): a field holding the delimiter, the quote or LF is
-- quoted, its quotes doubled (a CR never gets here: strip_controls turned it into LF)
CREATE OR REPLACE TEMP MACRO gd_csv_quote(v) AS
    CASE WHEN contains(v, ',') OR contains(v, '"') OR contains(v, chr(10))
         THEN '"' || replace(v, '"', '""') || '"' ELSE v END;

-- analytics.cli.output.csv_text for a text cell: controls stripped, formula-escaped, quoted.
-- The usual cells take the first two branches (nothing to do; only quoting, for a comma or a
-- quote); the rest binds the stripped text once (a macro argument is repeated where it is used).
CREATE OR REPLACE TEMP MACRO gd_csv_text(v) AS
    CASE WHEN v IS NULL THEN ''
         WHEN NOT regexp_matches(v, '[\x{0}-\x{1f}\x{7f}-\x{9f}\x{61c}\x{200e}\x{200f}\x{202a}-\x{202e}\x{2066}-\x{2069}\x{2028}\x{2029},"]|^[ =+\-@|\x{ff1d}\x{ff0b}\x{ff0d}\x{ff20}\x{ff5c}]')
              THEN v
         WHEN NOT regexp_matches(v, '[\x{0}-\x{1f}\x{7f}-\x{9f}\x{61c}\x{200e}\x{200f}\x{202a}-\x{202e}\x{2066}-\x{2069}\x{2028}\x{2029}]|^[ =+\-@|\x{ff1d}\x{ff0b}\x{ff0d}\x{ff20}\x{ff5c}]')
              THEN '"' || replace(v, '"', '""') || '"'
         ELSE list_transform(
                  list_transform([CASE WHEN gd_needs_strip(v) THEN gd_strip_keep_newlines(v) ELSE v END],
                                 lambda s: gd_escape_cell(s)),
                  lambda e: gd_csv_quote(e))[1]
    END;

-- analytics.json_output.to_jsonable for an aware datetime, in UTC: seconds and Z, or
-- isoformat() (microseconds and +00:00) when there are microseconds
-- (strftime's %Y has no leading zeros before the year 1000 in Python, four digits in DuckDB).
-- make_timestamp(epoch_us(t)) is t's UTC wall clock without a time zone lookup per row.
CREATE OR REPLACE TEMP MACRO gd_csv_time(t) AS
    CASE WHEN t IS NULL THEN ''
         WHEN epoch_us(t) % 1000000 <> 0 THEN strftime(make_timestamp(epoch_us(t)), '%Y-%m-%dT%H:%M:%S.%f+00:00')
         WHEN epoch_us(t) < -30610224000000000  -- before the year 1000
              THEN CAST(year(make_timestamp(epoch_us(t))) AS VARCHAR)
                   || strftime(make_timestamp(epoch_us(t)), '-%m-%dT%H:%M:%SZ')
         ELSE strftime(make_timestamp(epoch_us(t)), '%Y-%m-%dT%H:%M:%SZ') END;

-- a float as csv.writer writes it (repr); NaN and infinities are empty (to_jsonable's None).
-- DuckDB's shortest round-trip text is Python's repr digit for digit, but for the sign of -0.0.
CREATE OR REPLACE TEMP MACRO gd_float(v) AS
    CASE WHEN v = 0 AND signbit(v) THEN '-0.0' ELSE CAST(v AS VARCHAR) END;

CREATE OR REPLACE TEMP MACRO gd_csv_float(v) AS
    CASE WHEN v IS NULL OR NOT isfinite(v) THEN '' ELSE gd_float(v) END;

-- orjson's string: quote, backslash and C0 controls escaped (\b \t \n \f \r by name, the rest
-- as \u00xx); everything else as it is, in UTF-8
CREATE OR REPLACE TEMP MACRO gd_json_text(v) AS
    CASE WHEN v IS NULL THEN 'null'
         WHEN NOT regexp_matches(v, '[\x{0}-\x{1f}"\\]') THEN concat('"', v, '"')
         ELSE '"' || replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(v, '\', '\\'), '"', '\"'),
             chr(0), '\u0000'),
             chr(1), '\u0001'),
             chr(2), '\u0002'),
             chr(3), '\u0003'),
             chr(4), '\u0004'),
             chr(5), '\u0005'),
             chr(6), '\u0006'),
             chr(7), '\u0007'),
             chr(8), '\b'),
             chr(9), '\t'),
             chr(10), '\n'),
             chr(11), '\u000b'),
             chr(12), '\f'),
             chr(13), '\r'),
             chr(14), '\u000e'),
             chr(15), '\u000f'),
             chr(16), '\u0010'),
             chr(17), '\u0011'),
             chr(18), '\u0012'),
             chr(19), '\u0013'),
             chr(20), '\u0014'),
             chr(21), '\u0015'),
             chr(22), '\u0016'),
             chr(23), '\u0017'),
             chr(24), '\u0018'),
             chr(25), '\u0019'),
             chr(26), '\u001a'),
             chr(27), '\u001b'),
             chr(28), '\u001c'),
             chr(29), '\u001d'),
             chr(30), '\u001e'),
             chr(31), '\u001f') || '"'
    END;

-- orjson's aware datetime at offset zero (OPT_UTC_Z): seconds, or six digits of microseconds,
-- then Z. Only for a session in UTC: in any other zone DuckDB hands Python pytz datetimes, whose
-- offsets (no DST rules after 2037, local mean time before 1900) SQL cannot reproduce.
CREATE OR REPLACE TEMP MACRO gd_json_time(t) AS
    CASE WHEN t IS NULL THEN 'null'
         WHEN epoch_us(t) % 1000000 = 0 THEN strftime(make_timestamp(epoch_us(t)), '"%Y-%m-%dT%H:%M:%SZ"')
         ELSE strftime(make_timestamp(epoch_us(t)), '"%Y-%m-%dT%H:%M:%S.%fZ"') END;

-- orjson's float: repr's digits, except that it writes 1e-05 as 0.00001 and 1e-06 .. 1e-09 with
-- a one-digit exponent; NaN and infinities are null
CREATE OR REPLACE TEMP MACRO gd_json_float(v) AS
    CASE WHEN v IS NULL OR NOT isfinite(v) THEN 'null'
         WHEN abs(v) >= 0.0001 OR v = 0 THEN gd_float(v)  -- repr has no negative exponent
         WHEN ends_with(gd_float(v), 'e-05')
              THEN regexp_replace(gd_float(v), '^(-?)(\d)(?:\.(\d+))?e-05$', '\10.0000\2\3')
         ELSE regexp_replace(gd_float(v), 'e-0([6-9])$', 'e-\1') END;
