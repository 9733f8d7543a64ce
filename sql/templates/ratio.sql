/* kind ratio: a group's value of the base indicator (derived_from) / the base's `all` value in the same
   period and geography. Runs after the other kinds, reading indicator_values_raw.
   grain [indicator_id, period_end, geography_level, geography_code, breakdown, breakdown_value]
   inputs: indicator_values_raw, reg_indicator, reg_breakdown
   Only groups whose base value is a true rate (it has a denominator) take part; numerator = the group
   rate, denominator = the overall rate, n = the group's count and base_denominator = its population, so
   limits (the group rate's limits / the overall rate) can be added later. */
with base as (
    select v.*, r.indicator_id as ratio_id
    from indicator_values_raw as v
    inner join reg_indicator as r on v.indicator_id = r.derived_from
    where r.kind = 'ratio' and v.denominator is not null and v.value is not null
),

overall as (
    select * from base where breakdown = 'all'
),

final as (
    select
        g.ratio_id as indicator_id, g.period_end, g.geography_level, g.geography_code, g.breakdown,
        g.breakdown_value,
        g.value as numerator,
        o.value as denominator,
        g.value / o.value as value,
        null::double as sd,
        g.n,
        'ratio' as method,
        g.denominator as base_denominator
    from base as g
    inner join overall as o
        on g.ratio_id = o.ratio_id
        and g.period_end = o.period_end
        and g.geography_level = o.geography_level
        and g.geography_code = o.geography_code
    inner join reg_breakdown as b on g.ratio_id = b.indicator_id and g.breakdown = b.breakdown
    where o.value > 0
)

select * from final
