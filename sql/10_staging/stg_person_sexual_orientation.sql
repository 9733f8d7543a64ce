/* Each person's latest sexual orientation per month (MHS011, sexual-orientation SNOMED codes only).
   grain [person_id, umid]  ·  inputs: stg_MHS011SocPerCircumstances, seed_code */
create or replace temp table stg_person_sexual_orientation as
with final as (
    select
        s.Person_ID as person_id,
        s.UniqMonthID as umid,
        c.label as sexual_orientation
    from stg_MHS011SocPerCircumstances as s
    inner join seed_code as c on c.list_name = 'sexual_orientation' and s.SocPerCircumstance = c.code
    qualify row_number() over (
        partition by s.Person_ID, s.UniqMonthID
        order by s.SocPerCircumstanceRecTimestamp desc nulls last, s.src_line desc
    ) = 1
)

select * from final order by person_id, umid
