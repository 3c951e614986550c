-- Seconds since the epoch and the UTC day of a TIMESTAMPTZ, without the ICU calendar.
-- epoch() and timezone('UTC', ...) on a TIMESTAMPTZ go through ICU's calendar for every value:
-- about 3x (epoch) and 10x (the UTC day) the cost of the integer arithmetic below, which is most
-- of what computing 1M lead times cost besides the join. Both give exactly what ICU gives:
-- ICU's epoch is the whole milliseconds (floored) / 1000.0 plus the remaining microseconds
-- / 1e6 (DuckDB's ICUDatePart::ExtractEpoch after SetTime), which the macro repeats operation by
-- operation, so the DOUBLE is the same bit for bit (tests/test_metrics_instants.py compares them);
-- make_timestamp of the epoch microseconds is the UTC wall time, so its DATE is the UTC day.
CREATE OR REPLACE TEMP MACRO epoch_seconds(ts) AS
    ((epoch_us(ts) - ((epoch_us(ts) % 1000) + 1000) % 1000) // 1000) / 1000.0
    + (((epoch_us(ts) % 1000) + 1000) % 1000) / 1000000.0;

CREATE OR REPLACE TEMP MACRO utc_day(ts) AS CAST(make_timestamp(epoch_us(ts)) AS DATE);
