/* Every geography code of the output is a known area: in the geography lookup, which is built from the
   reference files (gp_practice_pcn.csv, providers.csv) plus the pseudo-PCNs UNMAPPED and UNKNOWN (per ICB when
   there are several).
   grain: offending (level, code)  ·  inputs: indicator_values_raw, geography */
select distinct v.geography_level, v.geography_code
from indicator_values_raw as v
left join geography as g on v.geography_level = g.geography_level and v.geography_code = g.geography_code
where g.geography_code is null
