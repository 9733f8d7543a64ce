/* A small integer code for every value of the breakdowns that fct_indicator_units carries per unit, so
   the biggest table of the build holds codes rather than text (agg_indicator_groups turns them back).
   grain [breakdown, code]  ·  inputs: stg_person_mpi, stg_person_disability, stg_person_sexual_orientation
   Values: every value the staged records hold for the five person characteristics (int_person_history
   carries them forward, with 'Not known' for NULL), 'Not known' for each (also a unit with no history
   row at its period), and the four age bands fct_indicator_units derives from ages. 'Not known' is code
   0 in every breakdown, so the facts and the data-quality counts need no lookup for it; the other
   values are numbered by their rank within the breakdown. The wait band is not coded: only
   waiting-list units have one. */
create or replace temp table int_breakdown_codes as
with mpi_values as (
    unpivot (select distinct ethnicity_group, gender, imd_quintile from stg_person_mpi)
    on ethnicity_group, gender, imd_quintile
    into name breakdown value value
),

all_values as (
    select breakdown, value from mpi_values
    union
    select 'disability', disability from stg_person_disability where disability is not null
    union
    select 'sexual_orientation', sexual_orientation from stg_person_sexual_orientation
    where sexual_orientation is not null
    union
    select breakdown, 'Not known'
    from (values ('ethnicity_group'), ('gender'), ('imd_quintile'), ('disability'), ('sexual_orientation'))
        as d (breakdown)
    union
    select 'age_band', band from (values ('18-25'), ('26-64'), ('65+'), ('Not known')) as a (band)
),

final as (
    select
        breakdown,
        value,
        if(value = 'Not known', 0, row_number() over (partition by breakdown order by value))::usmallint
            as code
    from all_values
)

select * from final order by breakdown, code
