/* Every counted unit of every typed indicator, with the person's geography and characteristics as at
   the period: the one table agg_indicator_groups (and through it sql/templates/<kind>.sql) aggregates.
   grain [indicator_key, period_end, unit] (a unit is a referral, a spell, a score pair or a person and
   provider, depending on the indicator; see the int_units__* files)
   inputs: int_units__*, int_people_in_contact, int_person_history, int_practice_geography,
   int_breakdown_codes, ref_providers, ref_gp_practice_pcn, stg_months, seed_code, reg_indicator
   Characteristics and practice come from the person's latest records up to the period (the row of
   int_person_history that holds at the period). Geography is the practice's PCN, place and ICB as at
   the period end; a practice outside any PCN keeps its place and ICB with PCN UNMAPPED; no usable
   practice gives place and PCN UNKNOWN under the ICB that hosts the provider; with several ICBs in
   the data the pseudo-PCNs are per ICB (UNMAPPED-<icb>, UNKNOWN-<icb>), since one national UNKNOWN
   would pool people of every ICB under a code each ICB's users read as their own. Age band uses the
   age at referral for referral-based units (ref_age) and the person's AgeRepPeriodEnd otherwise; no
   age, or under 18, is "Not known".
   The data-quality cohort (people in contact) is attached here too, as rows of the pseudo-indicator
   _people_in_contact: its six indicators need only breakdown `all`, so agg_indicator_groups turns them
   into indicators after a cheap geography-only grouping instead of 32 grouping sets each.
   Integers instead of text wherever a column is wide or repeated on every unit, for agg_indicator_groups'
   big grouping and to keep the table narrow (a group of periods holds tens of millions of rows
   nationally): indicator_key (the indicator's rank in reg_indicator; 0 for the _people_in_contact
   cohort; NULL for ids the registry lacks, which no indicator reads), the characteristics and age band
   as int_breakdown_codes' codes (*_code), and geography_key, which with provider_code determines
   icb/place/pcn (the practice's geography as at the period, ranked; NULL without one). late marks the
   four-week wait's units (agg_provider_pcns).
   Every source is read for the periods of stg_months alone (not only through the join to
   characteristics), so a build made a few periods at a time (sql_runner.PERIOD_LAYERS) reads each
   unit once, not once per group of periods.
   Not sorted, no person_id: about 3.7M rows at demo scale, read by agg_indicator_groups and the
   provider_pcns lookup, which need neither. */
create or replace temp table fct_indicator_units as
with units as (
    select *, false as late from int_units__referrals where umid in (select umid from stg_months)
    union all by name
    select *, false as late from int_units__contacts where umid in (select umid from stg_months)
    union all by name
    select *, false as late from int_units__access where umid in (select umid from stg_months)
    union all by name
    select *, false as late from int_units__waits where umid in (select umid from stg_months)
    union all by name
    select *, true as late from int_units__four_week_wait where umid in (select umid from stg_months)
    union all by name
    select *, false as late from int_units__outcomes where umid in (select umid from stg_months)
    union all by name
    select *, false as late from int_units__prom_quality where umid in (select umid from stg_months)
),

-- characteristics are looked up once per person and period (a narrow join), then hash-joined to
-- units and people separately (one wide union would be materialised twice)
person_periods as (
    select person_id, umid from int_units__referrals where umid in (select umid from stg_months)
    union
    select person_id, umid from int_units__contacts where umid in (select umid from stg_months)
    union
    select person_id, umid from int_units__access where umid in (select umid from stg_months)
    union
    select person_id, umid from int_units__waits where umid in (select umid from stg_months)
    union
    select person_id, umid from int_units__four_week_wait where umid in (select umid from stg_months)
    union
    select person_id, umid from int_units__outcomes where umid in (select umid from stg_months)
    union
    select person_id, umid from int_units__prom_quality where umid in (select umid from stg_months)
    union
    select person_id, umid from int_people_in_contact where umid in (select umid from stg_months)
),

-- the history rows that hold in some period of stg_months: at most a few per person, so a hash join on
-- person_id (with the months as a residual condition) replaces an ASOF join, which sorted the whole
-- history again for every group of periods a big build is made in
history as (
    select
        h.person_id, h.umid, h.until_umid, h.age, h.practice_code, h.employ_status,
        e.code as ethnicity_code, g.code as gender_code, i.code as imd_code, d.code as disability_code,
        o.code as orientation_code
    from int_person_history as h
    inner join int_breakdown_codes as e on e.breakdown = 'ethnicity_group' and h.ethnicity_group = e.value
    inner join int_breakdown_codes as g on g.breakdown = 'gender' and h.gender = g.value
    inner join int_breakdown_codes as i on i.breakdown = 'imd_quintile' and h.imd_quintile = i.value
    inner join int_breakdown_codes as d on d.breakdown = 'disability' and h.disability = d.value
    inner join int_breakdown_codes as o
        on o.breakdown = 'sexual_orientation' and h.sexual_orientation = o.value
    where h.umid <= (select max(umid) from stg_months) and h.until_umid > (select min(umid) from stg_months)
),

-- the age bands' codes ('Not known' is 0 in every breakdown: int_breakdown_codes)
codes as (
    select
        any_value(code) filter (where value = '18-25') as age_18,
        any_value(code) filter (where value = '26-64') as age_26,
        any_value(code) filter (where value = '65+') as age_65
    from int_breakdown_codes
    where breakdown = 'age_band'
),

practice_geography as (
    select *, dense_rank() over (order by icb_code, place_code, pcn_code)::integer as geography_key
    from int_practice_geography
),

characteristics as materialized (
    select
        pp.person_id,
        pp.umid,
        m.period_end,
        coalesce(h.ethnicity_code, 0) as ethnicity_code,
        coalesce(h.gender_code, 0) as gender_code,
        h.age as person_age,
        coalesce(h.imd_code, 0) as imd_code,
        coalesce(h.disability_code, 0) as disability_code,
        coalesce(h.orientation_code, 0) as orientation_code,
        h.employ_status,
        g.pcn_code,
        g.place_code,
        g.icb_code,
        g.geography_key
    from person_periods as pp
    inner join stg_months as m on pp.umid = m.umid
    left join history as h
        on pp.person_id = h.person_id and pp.umid >= h.umid and pp.umid < h.until_umid
    left join practice_geography as g on h.practice_code = g.practice_code and pp.umid = g.umid
),

several as (
    select count(distinct icb_code) > 1 as several_icbs
    from (select icb_code from ref_gp_practice_pcn union all select icb_code from ref_providers)
),

indicator_keys as (
    select indicator_id, row_number() over (order by indicator_id)::usmallint as indicator_key
    from reg_indicator
    union all
    select '_people_in_contact', 0
),

unit_rows as (
    select
        r.indicator_key,
        u.late,
        u.umid,
        c.period_end,
        c.geography_key,
        u.provider_code,
        coalesce(c.icb_code, p.icb_code, 'UNKNOWN') as icb_code,
        coalesce(c.place_code, 'UNKNOWN') as place_code,
        coalesce(c.pcn_code, if(s.several_icbs and p.icb_code is not null, 'UNKNOWN-' || p.icb_code, 'UNKNOWN'))
            as pcn_code,
        c.ethnicity_code,
        case
            when coalesce(u.ref_age, c.person_age) >= 65 then k.age_65
            when coalesce(u.ref_age, c.person_age) >= 26 then k.age_26
            when coalesce(u.ref_age, c.person_age) >= 18 then k.age_18
            else 0
        end as age_code,
        c.gender_code,
        c.imd_code,
        c.disability_code,
        c.orientation_code,
        u.wait_band,
        u.num,
        u.den,
        u.num_g,
        u.den_g,
        u.x
    from units as u
    inner join characteristics as c on u.person_id = c.person_id and u.umid = c.umid
    left join ref_providers as p on u.provider_code = p.provider_code
    cross join several as s
    cross join codes as k
    left join indicator_keys as r on u.indicator_id = r.indicator_id
),

-- a person in contact gives the data-quality cohort row (_people_in_contact) and, if they qualify, an
-- employment_paid_pct unit (open core CMH referral at the period end, known employment status)
people_rows as (
    select
        r.indicator_key,
        false as late,
        i.umid,
        c.period_end,
        c.geography_key,
        i.provider_code,
        coalesce(c.icb_code, p.icb_code, 'UNKNOWN') as icb_code,
        coalesce(c.place_code, 'UNKNOWN') as place_code,
        coalesce(c.pcn_code, if(s.several_icbs and p.icb_code is not null, 'UNKNOWN-' || p.icb_code, 'UNKNOWN'))
            as pcn_code,
        c.ethnicity_code,
        case
            when c.person_age >= 65 then ak.age_65
            when c.person_age >= 26 then ak.age_26
            when c.person_age >= 18 then ak.age_18
            else 0
        end as age_code,
        c.gender_code,
        c.imd_code,
        c.disability_code,
        c.orientation_code,
        null::varchar as wait_band,
        if(k.indicator_id = 'employment_paid_pct', (c.employ_status = '01')::double, 1.0) as num,
        1.0 as den,
        if(k.indicator_id = 'employment_paid_pct',
            ((c.employ_status = '01') and i.is_primary_open)::double, i.is_primary::double) as num_g,
        if(k.indicator_id = 'employment_paid_pct', i.is_primary_open, i.is_primary)::double as den_g,
        null::double as x
    from int_people_in_contact as i
    inner join characteristics as c on i.person_id = c.person_id and i.umid = c.umid
    left join ref_providers as p on i.provider_code = p.provider_code
    cross join several as s
    cross join codes as ak
    inner join (values ('_people_in_contact'), ('employment_paid_pct')) as k (indicator_id)
        on k.indicator_id = '_people_in_contact'
        or (
            i.has_open_core_referral
            and c.employ_status in (select code from seed_code where list_name = 'employ_status_known')
        )
    left join indicator_keys as r on k.indicator_id = r.indicator_id
    where i.umid in (select umid from stg_months)
),

final as (
    select * from unit_rows
    union all
    select * from people_rows
)

select * from final
