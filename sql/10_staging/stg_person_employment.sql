/* Each person's latest employment status per month (MHS004).
   grain [person_id, umid]  ·  inputs: stg_MHS004EmpStatus
   Within a month the latest EmployStatusRecDate wins (undated last). */
create or replace temp table stg_person_employment as
with final as (
    select
        Person_ID as person_id,
        UniqMonthID as umid,
        EmployStatus as employ_status
    from stg_MHS004EmpStatus
    qualify row_number() over (
        partition by Person_ID, UniqMonthID order by EmployStatusRecDate desc nulls last, src_line desc
    ) = 1
)

select * from final order by person_id, umid
