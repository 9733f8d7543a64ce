/* kind proportion: value = numerator / denominator x multiplier (100: percentages are 0-100).
   grain [indicator_id, period_end, geography_level, geography_code, breakdown, breakdown_value]
   inputs: agg_indicator_groups, reg_indicator
   Groups with no denominator have no value and are left out. Limits (Wilson) are added later. */
with final as (
    select
        a.indicator_id, a.period_end, a.geography_level, a.geography_code, a.breakdown, a.breakdown_value,
        a.numerator,
        a.denominator,
        a.numerator / a.denominator * r.multiplier as value,
        null::double as sd,
        a.denominator::bigint as n,
        r.method
    from agg_indicator_groups as a
    inner join reg_indicator as r on a.indicator_id = r.indicator_id
    where r.kind = 'proportion' and a.denominator > 0
)

select * from final
