/* Every person's characteristics and registered practice as at each month they changed.
   grain [person_id, umid]  ·  inputs: stg_person_mpi, stg_person_gp, stg_person_disability,
   stg_person_sexual_orientation, stg_person_employment
   For each month in which any of the five sources has a record, each value is the one from that
   source's latest record up to that month (spec/01: "latest record up to the period end"). Indicator
   facts then take, per period, the latest row of this table at or before the period (the row whose
   months umid .. until_umid - 1 hold the period), so no person x month grid is ever built.
   How: the five sources (each one row per person and month) are stacked, one row per person and
   month holds each source's record as a struct (NULL where that source sent none), and one window per
   source carries its latest record forward. A record is carried whole, so a NULL value in the latest
   record stays NULL rather than showing an older value. One sort serves all five windows, which is
   about twice as fast as five ASOF joins.
   until_umid: the person's next row's month (2147483647 for the last), so a row holds for the months
   umid <= m < until_umid, and a period finds its row by a hash join on person_id. */
create or replace temp table int_person_history as
with stacked as (
    select
        person_id, umid,
        {'ethnicity_group': ethnicity_group, 'gender': gender, 'age': age, 'imd_quintile': imd_quintile}
            as mpi,
        null as gp, null as disability, null as orientation, null as employment
    from stg_person_mpi
    union all by name
    select person_id, umid, {'practice_code': practice_code} as gp from stg_person_gp
    union all by name
    select person_id, umid, {'disability': disability} as disability from stg_person_disability
    union all by name
    select person_id, umid, {'sexual_orientation': sexual_orientation} as orientation
    from stg_person_sexual_orientation
    union all by name
    select person_id, umid, {'employ_status': employ_status} as employment from stg_person_employment
),

-- any_value skips NULLs, and each source has at most one row per person and month
by_month as (
    select
        person_id, umid, any_value(mpi) as mpi, any_value(gp) as gp, any_value(disability) as disability,
        any_value(orientation) as orientation, any_value(employment) as employment
    from stacked
    group by person_id, umid
),

carried as (
    select
        person_id,
        umid,
        last_value(mpi ignore nulls) over w as m,
        last_value(gp ignore nulls) over w as g,
        last_value(disability ignore nulls) over w as d,
        last_value(orientation ignore nulls) over w as o,
        last_value(employment ignore nulls) over w as e,
        lead(umid) over (partition by person_id order by umid) as next_umid
    from by_month
    window w as (partition by person_id order by umid rows between unbounded preceding and current row)
),

final as (
    select
        person_id,
        umid,
        coalesce(m.ethnicity_group, 'Not known') as ethnicity_group,
        coalesce(m.gender, 'Not known') as gender,
        m.age,
        coalesce(m.imd_quintile, 'Not known') as imd_quintile,
        g.practice_code,
        coalesce(d.disability, 'Not known') as disability,
        coalesce(o.sexual_orientation, 'Not known') as sexual_orientation,
        e.employ_status,
        coalesce(next_umid, 2147483647) as until_umid
    from carried
)

-- not sorted: later layers only join and aggregate it, so a sort here is wasted work
select * from final
