-- one row per month x participant (pseudonymised), from the current file of each month and province
-- (staging.current_rows: the rows of the newest live load covering each province, staging.current_loads)
select
    participants.month,
    participants.card_no,
    participants.person_key,
    participants.sex,
    participants.birth_year,
    participants.region_code,
    participants.segment,
    participants.status,
    participants.employer_id,
    participants.wage,
    participants.file_name
from staging.current_rows('participants') as participants
