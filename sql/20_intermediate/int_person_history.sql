/* Every person's characteristics and registered practice as at each month they changed.
   grain [person_id, umid]  ·  inputs: stg_person_mpi, stg_person_gp, stg_person_disability,
   stg_person_sexual_orientation, stg_person_employment
   For each month in which any of the five sources has a record, each value is the one from that
   source's latest record up to that month (spec/01: "latest record up to the period end"). Indicator
   facts then take, per period, the latest row of this table at or before the period (an ASOF join), so
   no person x month grid is ever built. */
create or replace temp table int_person_history as
with spine as (
    select person_id, umid from stg_person_mpi
    union
    select person_id, umid from stg_person_gp
    union
    select person_id, umid from stg_person_disability
    union
    select person_id, umid from stg_person_sexual_orientation
    union
    select person_id, umid from stg_person_employment
),

final as (
    select
        s.person_id,
        s.umid,
        coalesce(m.ethnicity_group, 'Not known') as ethnicity_group,
        coalesce(m.gender, 'Not known') as gender,
        m.age,
        coalesce(m.imd_quintile, 'Not known') as imd_quintile,
        g.practice_code,
        coalesce(d.disability, 'Not known') as disability,
        coalesce(o.sexual_orientation, 'Not known') as sexual_orientation,
        e.employ_status
    from spine as s
    asof left join stg_person_mpi as m on s.person_id = m.person_id and s.umid >= m.umid
    asof left join stg_person_gp as g on s.person_id = g.person_id and s.umid >= g.umid
    asof left join stg_person_disability as d on s.person_id = d.person_id and s.umid >= d.umid
    asof left join stg_person_sexual_orientation as o on s.person_id = o.person_id and s.umid >= o.umid
    asof left join stg_person_employment as e on s.person_id = e.person_id and s.umid >= e.umid
)

select * from final order by person_id, umid
