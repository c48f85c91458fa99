create or replace function private.tg__set_updated_at() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end;
$$;

comment on function private.tg__set_updated_at() is
  'Generic BEFORE UPDATE trigger: stamps updated_at with the transaction time. Attach as _100_timestamps.';
