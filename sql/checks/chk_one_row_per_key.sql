/* One row per indicator, period, geography and breakdown value.
   grain: offending keys  ·  inputs: indicator_values_raw */
select indicator_id, period_end, geography_level, geography_code, breakdown, breakdown_value, count(*) as n
from indicator_values_raw
group by all
having count(*) > 1
