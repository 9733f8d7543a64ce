/* Every person's characteristics and registered practice as at each month they changed.
   grain [person_id, umid]  ·  inputs: stg_person_mpi, stg_person_gp, stg_person_disability,
   stg_person_sexual_orientation, stg_person_employment
   For each month in which any of the five sources has a record, each value is the one from that
   source's latest record up to that month (spec/01: "latest record up to the period end"). Indicator
   facts then take, per period, the latest row of this table at or before the period (the row whose
   months umid .. until_umid - 1 hold the period), so no person x month grid is ever built.
   How: the five sources (each one row per person and month) are stacked, grouped to one row per person
   and month (plain columns and a flag per source: any_value skips the NULLs of the sources that sent
   nothing), each source's record is made a struct (NULL where that source sent none), and one window
   per source carries its latest record forward. A record is carried whole, so a NULL value in the
   latest record stays NULL rather than showing an older value. One sort serves all five windows, which
   is about twice as fast as five ASOF joins.
   Speed (national scale, 108 million stacked rows, 28 million person-months): people are numbered
   first (person_key) and grouped and sorted by that integer rather than by their 16-character ids,
   and structs are made after the grouping, not aggregated: 112 s -> 68 s.
   until_umid: the person's next row's month (2147483647 for the last), so a row holds for the months
   umid <= m < until_umid, and a period finds its row by a hash join on person_id. */
create or replace temp table int_person_history as
with people as (
    select person_id, row_number() over ()::integer as person_key
    from (
        select person_id from stg_person_mpi
        union
        select person_id from stg_person_gp
        union
        select person_id from stg_person_disability
        union
        select person_id from stg_person_sexual_orientation
        union
        select person_id from stg_person_employment
    )
),

stacked as (
    select
        person_id, umid, true as has_mpi, ethnicity_group, gender, age, imd_quintile,
        null::boolean as has_gp, null::varchar as practice_code,
        null::boolean as has_disability, null::varchar as disability,
        null::boolean as has_orientation, null::varchar as sexual_orientation,
        null::boolean as has_employment, null::varchar as employ_status
    from stg_person_mpi
    union all by name
    select person_id, umid, true as has_gp, practice_code from stg_person_gp
    union all by name
    select person_id, umid, true as has_disability, disability from stg_person_disability
    union all by name
    select person_id, umid, true as has_orientation, sexual_orientation from stg_person_sexual_orientation
    union all by name
    select person_id, umid, true as has_employment, employ_status from stg_person_employment
),

-- each source has at most one row per person and month, so any_value picks that source's value
grouped as (
    select
        p.person_key,
        s.umid,
        bool_or(s.has_mpi) as has_mpi,
        any_value(s.ethnicity_group) as ethnicity_group,
        any_value(s.gender) as gender,
        any_value(s.age) as age,
        any_value(s.imd_quintile) as imd_quintile,
        bool_or(s.has_gp) as has_gp,
        any_value(s.practice_code) as practice_code,
        bool_or(s.has_disability) as has_disability,
        any_value(s.disability) as disability,
        bool_or(s.has_orientation) as has_orientation,
        any_value(s.sexual_orientation) as sexual_orientation,
        bool_or(s.has_employment) as has_employment,
        any_value(s.employ_status) as employ_status
    from stacked as s
    inner join people as p on s.person_id = p.person_id
    group by p.person_key, s.umid
),

by_month as (
    select
        person_key,
        umid,
        if(has_mpi, {
            'ethnicity_group': ethnicity_group, 'gender': gender, 'age': age, 'imd_quintile': imd_quintile
        }, null) as mpi,
        if(has_gp, {'practice_code': practice_code}, null) as gp,
        if(has_disability, {'disability': disability}, null) as disability,
        if(has_orientation, {'sexual_orientation': sexual_orientation}, null) as orientation,
        if(has_employment, {'employ_status': employ_status}, null) as employment
    from grouped
),

carried as (
    select
        person_key,
        umid,
        last_value(mpi ignore nulls) over w as m,
        last_value(gp ignore nulls) over w as g,
        last_value(disability ignore nulls) over w as d,
        last_value(orientation ignore nulls) over w as o,
        last_value(employment ignore nulls) over w as e,
        lead(umid) over (partition by person_key order by umid) as next_umid
    from by_month
    window w as (partition by person_key order by umid rows between unbounded preceding and current row)
),

final as (
    select
        p.person_id,
        c.umid,
        coalesce(m.ethnicity_group, 'Not known') as ethnicity_group,
        coalesce(m.gender, 'Not known') as gender,
        m.age,
        coalesce(m.imd_quintile, 'Not known') as imd_quintile,
        g.practice_code,
        coalesce(d.disability, 'Not known') as disability,
        coalesce(o.sexual_orientation, 'Not known') as sexual_orientation,
        e.employ_status,
        coalesce(next_umid, 2147483647) as until_umid
    from carried as c
    inner join people as p on c.person_key = p.person_key
)

-- not sorted: later layers only join and aggregate it, so a sort here is wasted work
select * from final
