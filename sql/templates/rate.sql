/* kind rate: value = count / registered adult population x multiplier (per 10,000).
   grain [indicator_id, period_end, geography_level, geography_code, breakdown, breakdown_value]
   inputs: agg_indicator_groups, reg_indicator, int_population
   Where the whole level and breakdown has no population (providers; disability; sexual orientation) the
   value is the count itself and the denominator NULL, as the registry's caveats say. Where the breakdown
   has a population but this group has none ("Not known", "Non-binary or other", PCN UNMAPPED/UNKNOWN),
   the count is kept as numerator and the value is NULL. Counts below 10 get exact Poisson limits, so
   their method says so. */
with has_population as (
    select distinct geography_level, breakdown from int_population
),

final as (
    select
        a.indicator_id, a.period_end, a.geography_level, a.geography_code, a.breakdown, a.breakdown_value,
        a.numerator,
        p.population as denominator,
        case
            when p.population > 0 then a.numerator / p.population * r.multiplier
            when h.breakdown is null then a.numerator
        end as value,
        null::double as sd,
        a.numerator::bigint as n,
        case when a.numerator < 10 then 'exact_poisson' else r.method end as method
    from agg_indicator_groups as a
    inner join reg_indicator as r on a.indicator_id = r.indicator_id
    left join int_population as p
        on a.geography_level = p.geography_level
        and a.geography_code = p.geography_code
        and a.breakdown = p.breakdown
        and a.breakdown_value = p.breakdown_value
    left join has_population as h on a.geography_level = h.geography_level and a.breakdown = h.breakdown
    where r.kind = 'rate'
)

select * from final
