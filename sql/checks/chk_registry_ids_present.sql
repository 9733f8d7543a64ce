/* Output ids reconcile with the registry: every registered indicator has rows, and no row has an id
   the registry does not know (CONVENTIONS C3). Also every row's breakdown is one the registry lists.
   grain: offending ids  ·  inputs: indicator_values_raw, indicators (the registry as data) */
select i.indicator_id, 'missing from indicator_values_raw' as problem
from indicators as i
where i.indicator_id not in (select distinct indicator_id from indicator_values_raw)
union all
select distinct v.indicator_id, 'not in the registry'
from indicator_values_raw as v
where v.indicator_id not in (select indicator_id from indicators)
union all
select distinct v.indicator_id, 'breakdown ' || v.breakdown || ' not in the registry'
from indicator_values_raw as v
inner join indicators as i on v.indicator_id = i.indicator_id
where not list_contains(i.breakdowns, v.breakdown)
