/* Every indicator's units summed for every period x geography level x breakdown (4 levels x 8
   breakdowns) in one statement; the kind templates then only turn these sums into values.
   grain [indicator_id, period_end, geography_level, geography_code, breakdown, breakdown_value]
   inputs: fct_indicator_units, int_breakdown_codes, reg_breakdown, reg_indicator, stg_months  ·
   $quantiles (the registry's distinct quantile_p values)
   Provider rows sum num/den; geography rows sum num_g/den_g, which count a person once where the
   indicator counts people (see int_units__*). Only breakdowns the registry lists for the indicator are
   kept. Place UNKNOWN (people with no usable practice) is not a place: those people count in their ICB
   and under PCN UNKNOWN only.
   Speed: sums are grouped by breakdown at the finest geography first, on fct_indicator_units' integer
   keys, and then rolled up to the four levels; only units with a value x (for quantiles and SDs) go
   through all 32 sets. The data-quality cohort (_people_in_contact) is grouped by geography only, then
   unpivoted into the six dq_* indicators, since those have breakdown `all` alone. Breakdown values are
   grouped as fct_indicator_units' integer codes and turned back into text (int_breakdown_codes) only
   once grouped. */
create or replace temp table agg_indicator_groups as
-- sums: first by breakdown within the finest geography, then rolled up to the four levels (sums of
-- sums), which costs far less than 32 grouping sets over every unit. `all` is the sum of the ethnicity
-- groups (every unit has exactly one), and only waiting-list units carry a wait band, so the big input
-- goes through six grouping sets rather than eight.
with by_dimension as (
    select
        indicator_key,
        umid,
        geography_key,
        provider_code,
        case
            when grouping(ethnicity_code) = 0 then 'ethnicity_group'
            when grouping(age_code) = 0 then 'age_band'
            when grouping(gender_code) = 0 then 'gender'
            when grouping(imd_code) = 0 then 'imd_quintile'
            when grouping(disability_code) = 0 then 'disability'
            else 'sexual_orientation'
        end as breakdown,
        coalesce(ethnicity_code, age_code, gender_code, imd_code, disability_code, orientation_code) as code,
        null::varchar as breakdown_value,
        sum(num) as num,
        sum(den) as den,
        sum(num_g) as num_g,
        sum(den_g) as den_g
    from fct_indicator_units
    where x is null and indicator_key > 0
    group by
        indicator_key, umid, geography_key, provider_code,
        grouping sets (
            (ethnicity_code), (age_code), (gender_code), (imd_code), (disability_code), (orientation_code)
        )
),

by_breakdown_keys as (
    select * from by_dimension
    union all
    select
        indicator_key, umid, geography_key, provider_code, 'all', null, 'all',
        sum(num), sum(den), sum(num_g), sum(den_g)
    from by_dimension
    where breakdown = 'ethnicity_group'
    group by all
    union all
    select
        indicator_key, umid, geography_key, provider_code, 'wait_band', null, wait_band,
        sum(num), sum(den), sum(num_g), sum(den_g)
    from fct_indicator_units
    where x is null and wait_band is not null and indicator_key > 0
    group by all
),

-- the integer keys back to text: the same ranking of reg_indicator as fct_indicator_units, and the
-- geography each (geography_key, provider_code) pair stands for
indicator_keys as (
    select indicator_id, row_number() over (order by indicator_id)::usmallint as indicator_key
    from reg_indicator
),

geography_keys as (
    select distinct geography_key, provider_code, icb_code, place_code, pcn_code
    from fct_indicator_units
),

by_breakdown as (
    select
        i.indicator_id, m.period_end, g.icb_code, g.place_code, g.pcn_code, b.provider_code,
        b.breakdown, coalesce(b.breakdown_value, v.value) as breakdown_value, b.num, b.den, b.num_g, b.den_g
    from by_breakdown_keys as b
    inner join indicator_keys as i on b.indicator_key = i.indicator_key
    inner join stg_months as m on b.umid = m.umid
    left join int_breakdown_codes as v on b.breakdown = v.breakdown and b.code = v.code
    inner join geography_keys as g
        on b.geography_key is not distinct from g.geography_key
        and b.provider_code is not distinct from g.provider_code
),

summed as (
    select
        indicator_id,
        period_end,
        case
            when grouping(provider_code) = 0 then 'provider'
            when grouping(pcn_code) = 0 then 'pcn'
            when grouping(place_code) = 0 then 'place'
            else 'icb'
        end as geography_level,
        coalesce(provider_code, pcn_code, place_code, icb_code) as geography_code,
        breakdown,
        breakdown_value,
        case when grouping(provider_code) = 0 then sum(num) else sum(num_g) end as numerator,
        case when grouping(provider_code) = 0 then sum(den) else sum(den_g) end as denominator,
        0 as x_n,
        null::double as x_sd,
        null::double[] as x_quantiles
    from by_breakdown
    group by indicator_id, period_end, breakdown, breakdown_value, grouping sets ((icb_code), (place_code), (pcn_code), (provider_code))
),

-- units with a value x (waits, score changes) need every value for quantiles and SDs: 32 sets, few rows.
-- Their sums are exact, in 128-bit integers: fixed point at 1e-9 for the numerator (a mean's total) and
-- at 1e-6 for the SD's sums of x and x^2 (whose product with n must stay far inside 128 bits even for
-- 10-year waits). A sum of doubles (or stddev_samp) depends in its last bit on the order DuckDB's
-- threads add the values in, and the same inputs must publish byte-identical figures (spec/07);
-- integers add up to the same total in any order, and the SD is then worked out from them once.
valued_sums as (
    select
        indicator_key,
        period_end,
        case
            when grouping(provider_code) = 0 then 'provider'
            when grouping(pcn_code) = 0 then 'pcn'
            when grouping(place_code) = 0 then 'place'
            else 'icb'
        end as geography_level,
        coalesce(provider_code, pcn_code, place_code, icb_code) as geography_code,
        case
            when grouping(ethnicity_code) = 0 then 'ethnicity_group'
            when grouping(age_code) = 0 then 'age_band'
            when grouping(gender_code) = 0 then 'gender'
            when grouping(imd_code) = 0 then 'imd_quintile'
            when grouping(disability_code) = 0 then 'disability'
            when grouping(orientation_code) = 0 then 'sexual_orientation'
            when grouping(wait_band) = 0 then 'wait_band'
            else 'all'
        end as breakdown,
        coalesce(ethnicity_code, age_code, gender_code, imd_code, disability_code, orientation_code) as code,
        wait_band,
        case
            when grouping(provider_code) = 0 then sum(round(num * 1e9)::hugeint)
            else sum(round(num_g * 1e9)::hugeint)
        end as numerator_e9,
        case when grouping(provider_code) = 0 then sum(den) else sum(den_g) end as denominator,
        count(x) as x_n,
        sum(round(x * 1e6)::hugeint) as x_s1,
        sum(round(x * 1e6)::hugeint * round(x * 1e6)::hugeint) as x_s2,
        quantile_cont(x, $quantiles) as x_quantiles
    from fct_indicator_units
    where x is not null and indicator_key > 0
    group by
        indicator_key,
        period_end,
        grouping sets ((icb_code), (place_code), (pcn_code), (provider_code)),
        grouping sets (
            (), (ethnicity_code), (age_code), (gender_code), (imd_code), (disability_code), (orientation_code),
            (wait_band)
        )
),

-- sample SD = sqrt((n * sum(x^2) - sum(x)^2) / (n (n - 1))), the numerator an exact integer. A unit
-- without a wait band grouped by wait band has the value 'all' (no registered indicator keeps it).
valued as (
    select
        i.indicator_id,
        s.* exclude (indicator_key, code, wait_band, numerator_e9, x_s1, x_s2),
        coalesce(v.value, s.wait_band, 'all') as breakdown_value,
        s.numerator_e9 / 1e9 as numerator,
        case
            when s.x_n > 1
                then sqrt(greatest((s.x_n * s.x_s2 - s.x_s1 * s.x_s1)::double, 0) / (s.x_n::double * (s.x_n - 1)))
                    / 1e6
        end as x_sd
    from valued_sums as s
    inner join indicator_keys as i on s.indicator_key = i.indicator_key
    left join int_breakdown_codes as v on s.breakdown = v.breakdown and s.code = v.code
),


-- the data-quality cohort's known counts: 'Not known' is code 0 in every breakdown (int_breakdown_codes)
people as (
    select
        period_end,
        case
            when grouping(provider_code) = 0 then 'provider'
            when grouping(pcn_code) = 0 then 'pcn'
            when grouping(place_code) = 0 then 'place'
            else 'icb'
        end as geography_level,
        coalesce(provider_code, pcn_code, place_code, icb_code) as geography_code,
        grouping(provider_code) = 0 as by_provider,
        sum(num) as n_p,
        sum(num_g) as n_g,
        sum(num) filter (where ethnicity_code <> 0) as ethnicity_p,
        sum(num_g) filter (where ethnicity_code <> 0) as ethnicity_g,
        sum(num) filter (where imd_code <> 0) as imd_p,
        sum(num_g) filter (where imd_code <> 0) as imd_g,
        sum(num) filter (where split_part(pcn_code, '-', 1) not in ('UNMAPPED', 'UNKNOWN')) as practice_p,
        sum(num_g) filter (where split_part(pcn_code, '-', 1) not in ('UNMAPPED', 'UNKNOWN')) as practice_g,
        sum(num) filter (where gender_code <> 0) as gender_p,
        sum(num_g) filter (where gender_code <> 0) as gender_g,
        sum(num) filter (where disability_code <> 0) as disability_p,
        sum(num_g) filter (where disability_code <> 0) as disability_g,
        sum(num) filter (where orientation_code <> 0) as orientation_p,
        sum(num_g) filter (where orientation_code <> 0) as orientation_g
    from fct_indicator_units
    where indicator_key = 0
    group by period_end, grouping sets ((icb_code), (place_code), (pcn_code), (provider_code))
),

data_quality as (
    select
        d.indicator_id,
        p.period_end,
        p.geography_level,
        p.geography_code,
        'all' as breakdown,
        'all' as breakdown_value,
        coalesce(case d.indicator_id
            when 'dq_ethnicity_known_pct' then if(p.by_provider, p.ethnicity_p, p.ethnicity_g)
            when 'dq_imd_known_pct' then if(p.by_provider, p.imd_p, p.imd_g)
            when 'dq_practice_mapped_pct' then if(p.by_provider, p.practice_p, p.practice_g)
            when 'dq_gender_known_pct' then if(p.by_provider, p.gender_p, p.gender_g)
            when 'dq_disability_known_pct' then if(p.by_provider, p.disability_p, p.disability_g)
            when 'dq_sexual_orientation_known_pct' then if(p.by_provider, p.orientation_p, p.orientation_g)
        end, 0) as numerator,
        if(p.by_provider, p.n_p, p.n_g) as denominator,
        0 as x_n,
        null::double as x_sd,
        null::double[] as x_quantiles
    from people as p
    cross join (
        values ('dq_ethnicity_known_pct'), ('dq_imd_known_pct'), ('dq_practice_mapped_pct'),
            ('dq_gender_known_pct'), ('dq_disability_known_pct'), ('dq_sexual_orientation_known_pct')
    ) as d (indicator_id)
),

final as (
    select g.*
    from (
        select * from summed
        union all by name
        select * from valued
        union all by name
        select * from data_quality
    ) as g
    inner join reg_breakdown as b on g.indicator_id = b.indicator_id and g.breakdown = b.breakdown
    where not (g.geography_level = 'place' and g.geography_code = 'UNKNOWN')
)

-- not sorted: the kind templates read it whole and indicator_values_raw is sorted once at the end
select * from final
