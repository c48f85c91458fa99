create or replace function private._in_force(p_from timestamptz, p_to timestamptz, p_at timestamptz) returns boolean
language sql immutable
as $$ select p_from <= p_at and (p_to is null or p_to > p_at) $$;

comment on function private._in_force(timestamptz, timestamptz, timestamptz) is
  'Whether a row of a history table (a price, a rate, a fee: in force on [effective_from, effective_to)) is in '
  'force at p_at. The one definition of "in force". Inlinable (no SET clause; it names nothing).';
