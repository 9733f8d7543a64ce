/* lower <= value <= upper at both confidence levels, where limits are present.
   -- requires: indicator_values_raw(lower_95, upper_95, lower_998, upper_998)
   Limits are added after the build (methods.py); run_checks skips this check until they exist.
   grain: offending rows  ·  inputs: indicator_values_raw */
select *
from indicator_values_raw
where value is not null
    and (
        lower_95 > value + 1e-9 or upper_95 < value - 1e-9
        or lower_998 > value + 1e-9 or upper_998 < value - 1e-9
        or lower_998 > lower_95 + 1e-9 or upper_998 < upper_95 - 1e-9
    )
