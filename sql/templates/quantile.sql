/* kind quantile: value = quantile_cont (linear interpolation) of the unit values at the registry's p.
   grain [indicator_id, period_end, geography_level, geography_code, breakdown, breakdown_value]
   inputs: agg_indicator_groups, reg_indicator  ·  $quantiles (the same list agg_indicator_groups used)
   There is no numerator; the denominator is the number of values summarised. */
with final as (
    select
        a.indicator_id, a.period_end, a.geography_level, a.geography_code, a.breakdown, a.breakdown_value,
        null::double as numerator,
        a.x_n::double as denominator,
        a.x_quantiles[list_position($quantiles, r.quantile_p)] as value,
        null::double as sd,
        a.x_n as n,
        r.method
    from agg_indicator_groups as a
    inner join reg_indicator as r on a.indicator_id = r.indicator_id
    where r.kind = 'quantile' and a.x_n > 0
)

select * from final
