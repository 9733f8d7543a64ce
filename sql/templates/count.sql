/* kind count: value = the count of units (referrals or spells on a waiting list); no denominator.
   grain [indicator_id, period_end, geography_level, geography_code, breakdown, breakdown_value]
   inputs: agg_indicator_groups, reg_indicator
   A group with no units has no row (not a row with 0). */
with final as (
    select
        a.indicator_id, a.period_end, a.geography_level, a.geography_code, a.breakdown, a.breakdown_value,
        a.numerator,
        null::double as denominator,
        a.numerator as value,
        null::double as sd,
        a.numerator::bigint as n,
        case when a.numerator < 10 then 'exact_poisson' else r.method end as method
    from agg_indicator_groups as a
    inner join reg_indicator as r on a.indicator_id = r.indicator_id
    where r.kind = 'count'
)

select * from final
