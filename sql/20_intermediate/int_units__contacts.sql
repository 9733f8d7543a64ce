/* Indicator units for contacts in the month on core CMH referrals, summed per person, provider and month.
   grain [indicator_id, person_id, provider_code, umid]  ·  inputs: stg_contacts, stg_referrals, stg_months
   Summing contacts before attaching characteristics keeps the fact table small; proportions only need
   the sums. contacts_per_person counts a person once per geography (den_g on one provider row only),
   while their contacts at every provider add to the numerator. Age for age_band: the person's. */
create or replace temp table int_units__contacts as
with contacts as (
    select c.*
    from stg_contacts as c
    inner join stg_referrals as r on c.referral_id = r.referral_id
    inner join stg_months as m on c.contact_umid = m.umid
    where r.is_core
),

per_person as (
    select
        person_id,
        provider_code,
        contact_umid as umid,
        count(*) filter (where is_dna_eligible)::double as dna_den,
        count(*) filter (where is_dna_eligible and is_dna)::double as dna_num,
        count(*) filter (where is_attended_direct)::double as direct,
        count(*) filter (where is_attended_direct and mechanism = '01')::double as face_to_face,
        count(*) filter (where is_attended_direct and mechanism = '02')::double as telephone,
        count(*) filter (where is_attended_direct and mechanism = '11')::double as video
    from contacts
    group by all
),

primary_rows as materialized (
    select
        *,
        row_number() over (partition by person_id, umid, direct > 0 order by provider_code) = 1
            as is_primary
    from per_person
    order by umid
),

units as (
    select 'dna_rate_pct' as indicator_id, person_id, provider_code, umid, dna_num as num, dna_den as den,
        dna_num as num_g, dna_den as den_g
    from primary_rows where dna_den > 0
    union all
    select 'contact_mode_face_to_face_pct', person_id, provider_code, umid, face_to_face, direct,
        face_to_face, direct
    from primary_rows where direct > 0
    union all
    select 'contact_mode_telephone_pct', person_id, provider_code, umid, telephone, direct, telephone, direct
    from primary_rows where direct > 0
    union all
    select 'contact_mode_video_pct', person_id, provider_code, umid, video, direct, video, direct
    from primary_rows where direct > 0
    union all
    select 'contacts_per_person', person_id, provider_code, umid, direct, 1.0, direct, is_primary::double
    from primary_rows where direct > 0
),

final as (
    select
        indicator_id, umid, person_id, provider_code, null::integer as ref_age, null::varchar as wait_band,
        num, den, num_g, den_g, null::double as x
    from units
)

-- in month order (primary_rows is sorted, and the branches keep its order): a big build makes its
-- facts a month at a time (sql_runner.period_chunks), and each month's read of this table then skips
-- the other months' row groups (zone maps). Sorting the five-fold final rows instead ran out of
-- memory at 8 GB nationally.
select * from final
