create type public.hire_upgrade as (
  hire_id uuid,
  from_version integer,
  to_version integer,
  upgraded boolean
);

comment on type public.hire_upgrade is
  'What upgrade_hired_employee answers: the hire, the version it ran before and the one it runs now (equal, and '
  'upgraded false, when it already ran the current version).';
