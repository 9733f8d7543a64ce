/* Proportions: 0 <= numerator <= denominator, and the value is numerator / denominator x multiplier.
   grain: offending rows of indicator_values_raw  ·  inputs: indicator_values_raw, indicators */
select v.*
from indicator_values_raw as v
inner join indicators as i on v.indicator_id = i.indicator_id
where i.kind = 'proportion'
    and (
        v.numerator < 0
        or v.numerator > v.denominator
        or v.denominator <= 0
        or v.value is null
        or abs(v.value - v.numerator / v.denominator * i.multiplier) > 1e-9
    )
