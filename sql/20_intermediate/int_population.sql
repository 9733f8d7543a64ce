/* Registered adult population by geography and group: the denominators of rate indicators.
   grain [geography_level, geography_code, breakdown, breakdown_value]  ·  inputs: ref_population,
   ref_gp_practice_pcn
   population.csv is by PCN; places and ICBs are sums of their PCNs (each PCN's place and ICB from the
   practice file). Only the dimensions population.csv carries appear; providers have no population. */
create or replace temp table int_population as
with pcn_parent as (
    select pcn_code, any_value(place_code order by rel_start_date desc, practice_code) as place_code,
        any_value(icb_code order by rel_start_date desc, practice_code) as icb_code
    from ref_gp_practice_pcn
    where nullif(trim(pcn_code), '') is not null
    group by pcn_code
),

pop as (
    select
        p.pcn_code,
        pp.place_code,
        pp.icb_code,
        p.ethnicity_group,
        p.age_band,
        case lower(p.gender) when 'male' then 'Male' when 'female' then 'Female' else p.gender end as gender,
        p.imd_quintile::varchar as imd_quintile,
        p.population
    from ref_population as p
    left join pcn_parent as pp on p.pcn_code = pp.pcn_code
),

grouped as (
    select
        case when grouping(icb_code) = 0 then 'icb' when grouping(place_code) = 0 then 'place' else 'pcn' end
            as geography_level,
        coalesce(icb_code, place_code, pcn_code) as geography_code,
        case
            when grouping(ethnicity_group) = 0 then 'ethnicity_group'
            when grouping(age_band) = 0 then 'age_band'
            when grouping(gender) = 0 then 'gender'
            when grouping(imd_quintile) = 0 then 'imd_quintile'
            else 'all'
        end as breakdown,
        coalesce(ethnicity_group, age_band, gender, imd_quintile, 'all') as breakdown_value,
        sum(population)::double as population
    from pop
    group by
        grouping sets ((icb_code), (place_code), (pcn_code)),
        grouping sets ((), (ethnicity_group), (age_band), (gender), (imd_quintile))
),

final as (
    select * from grouped where geography_code is not null
)

select * from final order by all
