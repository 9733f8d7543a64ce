/* kind mean: value = sum of unit values / number of units; sd and n let a t interval be added later.
   grain [indicator_id, period_end, geography_level, geography_code, breakdown, breakdown_value]
   inputs: agg_indicator_groups, reg_indicator
   sd is the sample SD of the unit values (only for method t: contacts_per_person's units are people whose
   contact counts are summed, and it has no interval). */
with final as (
    select
        a.indicator_id, a.period_end, a.geography_level, a.geography_code, a.breakdown, a.breakdown_value,
        a.numerator,
        a.denominator,
        a.numerator / a.denominator as value,
        case when r.method = 't' then a.x_sd end as sd,
        a.denominator::bigint as n,
        r.method
    from agg_indicator_groups as a
    inner join reg_indicator as r on a.indicator_id = r.indicator_id
    where r.kind = 'mean' and a.denominator > 0
)

select * from final
