/* Each person's MPI record per month with the derived dimensions of spec/01.
   grain [person_id, umid]  ·  inputs: stg_MHS001MPI, ref_lsoa_imd, seed_code
   A person seen by two providers in one month has two MPI rows; the one with the higher RecordNumber
   (then provider code) is that month's record, so one person has one set of characteristics. */
create or replace temp table stg_person_mpi as
with mpi as (
    select * from stg_MHS001MPI
    qualify row_number() over (
        partition by Person_ID, UniqMonthID order by RecordNumber desc, OrgIDProv desc, src_line desc
    ) = 1
),

ethnicity as (
    select code, label from seed_code where list_name = 'ethnicity_group'
),

final as (
    select
        m.Person_ID as person_id,
        m.UniqMonthID as umid,
        coalesce(e.label, 'Not known') as ethnicity_group,
        case
            when m.GenderIDCode = '1' then 'Male'
            when m.GenderIDCode = '2' then 'Female'
            when m.GenderIDCode in ('3', '4') then 'Non-binary or other'
            when m.Gender = '1' then 'Male'
            when m.Gender = '2' then 'Female'
            else 'Not known'
        end as gender,
        m.AgeRepPeriodEnd as age,
        coalesce(((i.imd_decile + 1) // 2)::varchar, 'Not known') as imd_quintile
    from mpi as m
    left join ethnicity as e on upper(left(trim(m.EthnicCategory), 1)) = e.code
    left join ref_lsoa_imd as i on m.LSOA2011 = i.lsoa_code
)

select * from final order by person_id, umid
